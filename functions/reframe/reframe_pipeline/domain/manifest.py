"""The manifest written beside the variants (docs/outputs.md)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, Field

from reframe_pipeline.domain.errors import AccountError, ReframeError, TransientError
from reframe_pipeline.domain.provenance import Provenance


class ErrorInfo(BaseModel):
    code: str
    message: str


class SourceBox(BaseModel):
    """Where the source was found in the provider's result, in the result's pixels."""

    x: int
    y: int
    width: int
    height: int


# Warnings on a variant that was written all the same: the source check scored it below SOURCE_MATCH_MIN;
# no exact-size crop of the canvas could keep the source's box whole.
SOURCE_ALTERED = "source_altered"
SOURCE_CROPPED = "source_cropped"


class Rendition(BaseModel):
    """One deliverable of a variant: a format at a width, in OUTPUT_BUCKET."""

    key: str
    format: str  # a FORMATS key: png, jpeg, webp, avif
    width: int
    height: int
    bytes: int
    url: str | None = None  # under PUBLIC_BASE_URL, when set


class VariantRecord(BaseModel):
    name: str
    key: str | None = None
    # unconfigured: a file of a target the configuration no longer has (kept until a sidecar's `prune`).
    status: Literal["created", "existing", "failed", "unconfigured"]
    width: int | None = None
    height: int | None = None
    resolution: str | None = None
    provider: str | None = None
    seed: int | None = None  # the seed the variant was made with (the sidecar's, or the provider's choice)
    # The hash of the parameters it was made with (the variant's params-hash metadata): with the seed, what
    # tells a variant made again (a new seed, quality, focus) from the one before under the same key.
    param_hash: str | None = None
    rendering_speed: str | None = None
    cost_usd: float = 0.0
    latency_ms: int | None = None
    attempts: int = 0
    error: ErrorInfo | None = None
    provenance: Provenance | None = None  # what the variant's XMP says of how it was made
    generation: str | None = None  # the generation it was rendered from (its id)
    generation_key: str | None = None  # where that generation is kept, when it is
    rendered_from_generation: bool = False  # made from a kept generation: nothing paid
    note: str | None = None
    # Made by the fallback provider (FALLBACK_PROVIDER) because the configured one failed for good: its error.
    fallback_reason: ErrorInfo | None = None
    # The source check (SOURCE_CHECK): how well the source survived in the provider's result (0..1, mean SSIM on
    # small grayscale thumbnails) and where it was found; None when the check is off or was not made.
    source_match: float | None = None
    source_box: SourceBox | None = None
    warnings: list[str] = Field(default_factory=list)
    # Every deliverable of the variant (``key`` is the first: the first format at the full width), and per
    # format the srcset of its widths (URLs, or keys without PUBLIC_BASE_URL).
    renditions: list[Rendition] = Field(default_factory=list)
    srcset: dict[str, str] = Field(default_factory=dict)
    # Failed for a reason that may pass (transient, account, deadline): the record goes back to SQS. A fallback
    # made for such a reason keeps it: the provider is tried again on the redelivery.
    retryable: bool = Field(False, exclude=True)

    @classmethod
    def failure(cls, name: str, exc: Exception, **fields: object) -> VariantRecord:
        if isinstance(exc, ReframeError):
            error = ErrorInfo(code=exc.code, message=exc.message)
        else:
            error = ErrorInfo(code="internal", message=f"{type(exc).__name__}: {exc}")
        retryable = isinstance(exc, TransientError | AccountError) or not isinstance(exc, ReframeError)
        return cls(name=name, status="failed", error=error, retryable=retryable, **fields)


class SourceInfo(BaseModel):
    bucket: str
    key: str
    etag: str
    version: str | None = None  # the S3 version id, or the last-modified time where versioning is off
    prepared: dict[str, list[str]] | None = None


class ConfigInfo(BaseModel):
    from_: Literal["object", "folder", "default"] = Field(alias="from")
    key: str | None = None

    model_config = {"populate_by_name": True}


class Manifest(BaseModel):
    source: SourceInfo
    config: ConfigInfo
    # Where the deliverables (renditions) are: OUTPUT_BUCKET; None in manifests written before it existed.
    output_bucket: str | None = None
    variants: list[VariantRecord]
    error: ErrorInfo | None = None
    generated_at: str = Field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))

    def to_json(self) -> bytes:
        return self.model_dump_json(by_alias=True, indent=2).encode()

    @property
    def needs_retry(self) -> bool:
        return any(v.retryable for v in self.variants)

    def deliverable_keys(self) -> set[str]:
        """Every deliverable this manifest lists (a variant without renditions: its one key)."""
        keys = {r.key for v in self.variants for r in v.renditions}
        return keys | {v.key for v in self.variants if v.key and not v.renditions}
