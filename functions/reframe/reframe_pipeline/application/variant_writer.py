"""Writing one variant: finished (cropped, converted, marked), signed, checked and stored with its metadata."""

from __future__ import annotations

from typing import NamedTuple

from reframe_pipeline.application.deliverables import Publisher
from reframe_pipeline.application.generations import META_GENERATION
from reframe_pipeline.application.object_metadata import META_FALLBACK, variant_metadata
from reframe_pipeline.application.ports import ContentSigner
from reframe_pipeline.application.source_matching import SourceFound
from reframe_pipeline.application.values import ParentImage, ReframeResult
from reframe_pipeline.application.variant_job import VariantJob
from reframe_pipeline.domain.cropping import Box
from reframe_pipeline.domain.finishing import render_all
from reframe_pipeline.domain.imaging import FORMATS
from reframe_pipeline.domain.manifest import SOURCE_ALTERED, SOURCE_CROPPED, Rendition
from reframe_pipeline.domain.provenance import Provenance, xmp_packet
from reframe_pipeline.observability import traced


class Written(NamedTuple):
    renditions: list[Rendition]  # the deliverables, the first format at full width first
    signed: bool
    warnings: tuple[str, ...]  # as its metadata keeps them: the source looks altered; the crop cut into it

    @property
    def key(self) -> str:
        return self.renditions[0].key


def seed_of(job: VariantJob, result: ReframeResult) -> int | None:
    """The sidecar's seed, or the one the provider says it used."""
    return job.variant.seed if job.variant.seed is not None else result.seed


class VariantWriter:
    def __init__(self, signer: ContentSigner | None, publisher: Publisher, match_min: float = 0.0) -> None:
        self.signer = signer  # None: C2PA_SIGNING=off
        self.publisher = publisher
        self.match_min = match_min  # SOURCE_MATCH_MIN: below it, the source looks altered

    def write(
        self,
        job: VariantJob,
        result: ReframeResult,
        provenance: Provenance,
        fallback: str | None = None,
        seed: int | None = None,
        found: SourceFound | None = None,
    ) -> Written:
        """Finish (an exact-size crop around the source's box when its check ``found`` it) every deliverable,
        mark, optimize, sign, check and store them; ``fallback`` names the fallback provider that made the
        variant. Its warnings go in its metadata too, so a later run that finds it existing lists them."""
        v = job.variant
        box = Box(found.box.x, found.box.y, found.box.width, found.box.height) if found else None
        rendered, cropped = render_all(result.body, v, xmp_packet(provenance, job.source.credits), box)
        altered = found is not None and found.score < self.match_min
        warnings = tuple(w for w, flagged in ((SOURCE_ALTERED, altered), (SOURCE_CROPPED, cropped)) if flagged)
        job.check_source()  # before signing, which reads the source as the variant's parent
        metadata = variant_metadata(job.origin, v.param_hash, job.gen_id, seed or seed_of(job, result), False, warnings)
        if fallback:  # not rendered from the provider's generation, and not current for a later run
            del metadata[META_GENERATION]
            metadata[META_FALLBACK] = fallback
        with traced("upload"):
            renditions, signed = self.publisher.publish(
                job.out,
                job.path,
                v.name,
                rendered,
                metadata,
                lambda body, fmt: self._signed(job, body, fmt, provenance),
            )
        return Written(renditions, self.signer is not None and signed, warnings)

    def _signed(self, job: VariantJob, body: bytes, fmt: str, provenance: Provenance) -> bytes | None:
        """``body`` with Content Credentials, after its XMP (the signature binds every byte); None when signing
        is off or failed."""
        if self.signer is None:
            return None
        parent = ParentImage(title=job.origin.key.rsplit("/", 1)[-1], load=job.source.load)
        with traced("sign"):
            return self.signer.sign(body, FORMATS[fmt].mime, parent, provenance)
