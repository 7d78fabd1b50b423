"""Writing one variant: finished (cropped, converted, marked), signed, checked and stored with its metadata."""

from __future__ import annotations

from typing import NamedTuple

from reframe_pipeline.application.generations import META_GENERATION
from reframe_pipeline.application.object_metadata import META_FALLBACK, variant_metadata
from reframe_pipeline.application.ports import ContentSigner
from reframe_pipeline.application.values import ParentImage, ReframeResult
from reframe_pipeline.application.variant_job import VariantJob
from reframe_pipeline.domain.cropping import Box
from reframe_pipeline.domain.errors import PermanentError
from reframe_pipeline.domain.finishing import finish_image
from reframe_pipeline.domain.imaging import FORMATS, ImageCheckError, verify
from reframe_pipeline.domain.manifest import SourceBox
from reframe_pipeline.domain.provenance import Provenance, xmp_packet
from reframe_pipeline.observability import traced


class Written(NamedTuple):
    key: str
    size: int
    signed: bool
    source_cropped: bool  # the crop had to cut into the source


def seed_of(job: VariantJob, result: ReframeResult) -> int | None:
    """The sidecar's seed, or the one the provider says it used."""
    return job.variant.seed if job.variant.seed is not None else result.seed


class VariantWriter:
    def __init__(self, signer: ContentSigner | None) -> None:
        self.signer = signer  # None: C2PA_SIGNING=off

    def write(
        self,
        job: VariantJob,
        result: ReframeResult,
        provenance: Provenance,
        fallback: str | None = None,
        seed: int | None = None,
        source: SourceBox | None = None,
    ) -> Written:
        """Finish (an exact-size crop around ``source``, the source's box when the check found it), mark,
        sign, check and store the variant; ``fallback`` names the fallback provider that made it."""
        v = job.variant
        box = Box(source.x, source.y, source.width, source.height) if source else None
        body, fmt, cropped = finish_image(result.body, v, xmp_packet(provenance, job.source.credits), box)
        job.check_source()  # before signing, which reads the source as the variant's parent
        signed = self._signed(job, body, fmt, provenance)
        body = signed or body
        try:  # every output is changed by its marking at least: checked again
            verify(body, v.final_size)
        except ImageCheckError as exc:  # our own output: a bug, not the user's input
            raise PermanentError(f"output check failed: {exc}", code="output_check") from None
        key = job.key(FORMATS[fmt].ext)
        with traced("upload"):
            metadata = variant_metadata(
                job.origin, v.param_hash, job.gen_id, seed or seed_of(job, result), signed is not None
            )
            if fallback:  # not rendered from the provider's generation, and not current for a later run
                del metadata[META_GENERATION]
                metadata[META_FALLBACK] = fallback
            job.storage.write(key, body, FORMATS[fmt].mime, metadata)
        return Written(key, len(body), signed is not None, cropped)

    def _signed(self, job: VariantJob, body: bytes, fmt: str, provenance: Provenance) -> bytes | None:
        """``body`` with Content Credentials, after its XMP (the signature binds every byte); None when signing
        is off or failed."""
        if self.signer is None:
            return None
        parent = ParentImage(title=job.origin.key.rsplit("/", 1)[-1], load=job.source.load)
        with traced("sign"):
            return self.signer.sign(body, FORMATS[fmt].mime, parent, provenance)
