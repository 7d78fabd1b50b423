"""The backfill's survey: every image under a prefix, its planned variants and the ones not yet made, with
the pipeline's own discovery, planning and current-variant check, so "missing" means exactly what a run
would pay for. Reads only."""

from __future__ import annotations

from dataclasses import dataclass, field

from reframe_pipeline.application.generations import Generations
from reframe_pipeline.application.object_metadata import is_fallback
from reframe_pipeline.application.pipeline import Pipeline
from reframe_pipeline.application.values import ObjectInfo
from reframe_pipeline.domain.events import KeyKind, classify
from reframe_pipeline.domain.planning import PlannedVariant
from reframe_pipeline.domain.sidecar import InvalidSidecarError


@dataclass(frozen=True)
class ImageWork:
    info: ObjectInfo
    planned: list[PlannedVariant]
    missing: list[PlannedVariant]
    paid: list[PlannedVariant]  # the missing variants whose generation is neither kept nor shared: paid for
    fallbacks: int = 0  # variants made by the fallback provider (missing with --retry-fallbacks, else present)


@dataclass
class Survey:
    bucket: str
    prefix: str
    images: int = 0
    unconfigured: int = 0
    invalid: dict[str, str] = field(default_factory=dict)  # image key -> the sidecar's problem
    retry_fallbacks: bool = False  # variants made by the fallback provider count as missing
    configured: list[ImageWork] = field(default_factory=list)

    @property
    def todo(self) -> list[ImageWork]:
        return [work for work in self.configured if work.missing]


def survey(pipeline: Pipeline, bucket: str, prefix: str, retry_fallbacks: bool = False) -> Survey:
    """Every image under ``prefix``, its planned variants and the ones not yet produced. Reads only.
    A variant made by the fallback provider is present, or with ``retry_fallbacks`` missing: the handler
    then asks the provider for it (it never takes a fallback for the provider's variant)."""
    s = pipeline.options
    storage = pipeline.storage_for(bucket)
    result = Survey(bucket, prefix, retry_fallbacks=retry_fallbacks)
    for info in storage.list_objects(prefix):
        if classify(info.key, s.input_prefix, s.output_prefix) is not KeyKind.IMAGE:
            continue
        result.images += 1
        found = pipeline.find_config(storage, info.key)
        if found is None:
            result.unconfigured += 1
            continue
        try:
            planned, _prune = pipeline.plan_config(found)
        except InvalidSidecarError as exc:
            result.invalid[info.key] = exc.message
            continue
        folder = pipeline.folder(storage, info.key)
        present = {item.key for item in storage.list_objects(folder.out_dir)}
        existing = folder.existing(info, planned, present, fallback_ok=True)
        fallbacks = {name for name, head in existing.items() if is_fallback(head)}
        missing = [v for v in planned if v.name not in existing or (retry_fallbacks and v.name in fallbacks)]
        paid = _to_pay(pipeline.generations(storage, folder.out_dir, present), info, missing)
        result.configured.append(ImageWork(info, planned, missing, paid, len(fallbacks)))
    return result


def _to_pay(generations: Generations, info: ObjectInfo, missing: list[PlannedVariant]) -> list[PlannedVariant]:
    """The missing variants that will pay: one per generation that is not kept in the folder."""
    paid: dict[str, PlannedVariant] = {}
    for v in missing:
        gen_id = generations.id_for(v, info)
        if not generations.listed(gen_id):
            paid.setdefault(gen_id, v)
    return list(paid.values())
