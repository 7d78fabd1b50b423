"""The backfill's survey: every image under a prefix, its planned variants and the ones not yet made, with
the pipeline's own discovery, planning and current-variant check, so "missing" means exactly what a run
would pay for. Reads only."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from pydantic import ValidationError

from reframe_pipeline.application import folder_contents
from reframe_pipeline.application.generations import Generations
from reframe_pipeline.application.object_metadata import is_fallback
from reframe_pipeline.application.outputs import OutputFolder
from reframe_pipeline.application.pipeline import Pipeline
from reframe_pipeline.application.ports import Storage
from reframe_pipeline.application.values import ObjectInfo
from reframe_pipeline.domain.events import KeyKind, classify
from reframe_pipeline.domain.manifest import Manifest
from reframe_pipeline.domain.planning import PlannedVariant
from reframe_pipeline.domain.preparation import UnsupportedImageError
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
    # Uploads whose manifest says this very upload was refused as not an image: a run would refuse it again.
    rejected: dict[str, str] = field(default_factory=dict)  # image key -> why
    # Missing variants that the manifest says another provider made (provider -> count): the configured one has
    # other parameters, so they would be made, and paid for, again.
    other_providers: Counter[str] = field(default_factory=Counter)
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
        if classify(info.key, s.input_prefix, s.output_prefix) is KeyKind.IMAGE:
            result.images += 1
            _survey_image(pipeline, storage, info, result)
    return result


def _survey_image(pipeline: Pipeline, storage: Storage, info: ObjectInfo, result: Survey) -> None:
    found = pipeline.config.find(storage, info.key)
    if found is None:
        result.unconfigured += 1
        return
    try:
        planned, _prune = pipeline.config.plan(found)
    except InvalidSidecarError as exc:
        result.invalid[info.key] = exc.message
        return
    folder = pipeline.folder(storage, info.key)
    present = {item.key for item in storage.list_objects(folder.out_dir)}
    manifest = _last_manifest(folder, present)
    if manifest is not None and (refusal := _refused_as_not_an_image(manifest, info)):
        result.rejected[info.key] = refusal
        return
    existing = folder_contents.existing(folder, info, planned, present, fallback_ok=True)
    fallbacks = {name for name, head in existing.items() if is_fallback(head)}
    missing = [v for v in planned if v.name not in existing or (result.retry_fallbacks and v.name in fallbacks)]
    if manifest is not None:
        result.other_providers.update(_made_by_others(manifest, missing, pipeline.provider.name))
    paid = _to_pay(pipeline.generations(storage, folder.out_dir, present), info, missing)
    result.configured.append(ImageWork(info, planned, missing, paid, len(fallbacks)))


def _last_manifest(folder: OutputFolder, present: set[str]) -> Manifest | None:
    """The folder's manifest, when its listing shows one and it reads (an unreadable one tells nothing)."""
    if folder.manifest_key not in present:
        return None
    try:
        return Manifest.model_validate_json(folder.storage.read(folder.manifest_key))
    except (FileNotFoundError, ValidationError):
        return None


def _refused_as_not_an_image(manifest: Manifest, info: ObjectInfo) -> str | None:
    """Why this very upload (its ETag) was refused as not an image; None when it was not."""
    error = manifest.error
    if error is None or error.code != UnsupportedImageError.code or manifest.source.etag != info.etag:
        return None
    return error.message


def _made_by_others(manifest: Manifest, missing: list[PlannedVariant], provider: str) -> Counter[str]:
    """The providers other than ``provider`` that made variants now missing (not as a fallback)."""
    names = {v.name for v in missing}
    return Counter(
        r.provider
        for r in manifest.variants
        if r.name in names
        and r.status in ("created", "existing")
        and r.provider not in (None, provider)
        and r.fallback_reason is None
    )


def _to_pay(generations: Generations, info: ObjectInfo, missing: list[PlannedVariant]) -> list[PlannedVariant]:
    """The missing variants that will pay: one per generation that is not kept in the folder."""
    paid: dict[str, PlannedVariant] = {}
    for v in missing:
        gen_id = generations.id_for(v, info)
        if not generations.listed(gen_id):
            paid.setdefault(gen_id, v)
    return list(paid.values())
