"""One variant to produce in this run: where its source and folder are, its generation, its deadline."""

from __future__ import annotations

from dataclasses import dataclass

from reframe_pipeline.application.deadline import Deadline
from reframe_pipeline.application.generations import LONGEST_NAME, Generations
from reframe_pipeline.application.object_metadata import (
    ALL_WARNINGS,
    LARGEST_SEED,
    LONGEST_CHECK,
    check_output_limits,
    variant_metadata,
)
from reframe_pipeline.application.ports import Storage
from reframe_pipeline.application.source_image import SourceImage
from reframe_pipeline.application.values import GenerationParams, ObjectInfo
from reframe_pipeline.domain.errors import SourceChangedError
from reframe_pipeline.domain.planning import PlannedVariant


@dataclass(frozen=True)
class VariantJob:
    storage: Storage
    origin: ObjectInfo  # the uploaded object (the source sent may be a prepared copy of it)
    source: SourceImage
    out_dir: str
    variant: PlannedVariant
    deadline: Deadline
    generations: Generations  # the source's kept generations in this run
    gen_id: str  # the generation this variant is rendered from (generation_id)
    work_id: str  # the generation's identity in the journal: what is paid for
    out: Storage  # where its deliverables go (OUTPUT_BUCKET)
    path: str  # the source key below INPUT_PREFIX: the key template's {path}
    previous_generation: str | None = None  # the generation of the rendition this one replaces

    def check_limits(self, gen_metadata: dict[str, str], longest_key: str, *, signing: bool, checking: bool) -> None:
        """The longest key and metadata the variant and its kept generation can take, before anything is paid."""
        v = self.variant
        check_output_limits(
            longest_key,
            variant_metadata(self.origin, v.param_hash, self.gen_id, LARGEST_SEED, signing, ALL_WARNINGS),
        )
        check_output_limits(self.out_dir + LONGEST_NAME, {**gen_metadata, **(LONGEST_CHECK if checking else {})})

    def params(self, presign_expiry_s: int) -> GenerationParams:
        """What the provider is asked for, object-key style references presigned."""
        v = self.variant
        urls = tuple(
            ref if ref.startswith("https://") else self.storage.presign_get(ref, presign_expiry_s)
            for ref in v.style_references
        )
        return GenerationParams(
            rendering_speed=v.rendering_speed,
            seed=v.seed,
            style_codes=v.style_codes,
            style_reference_urls=urls,
            color_palette=v.color_palette,
        )

    def check_source(self) -> None:
        """A source overwritten or deleted while the provider worked wins: this result describes a version
        that is gone, and must not replace (or outlive) what the newer event makes."""
        current = self.storage.head(self.origin.key)
        if current is None or current.etag != self.origin.etag:
            raise SourceChangedError("the source was overwritten or deleted meanwhile: result not written")
