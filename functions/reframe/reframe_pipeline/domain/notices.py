"""What downstream systems are told when a source's work ends (docs/notices.md): the detail of one
notice, built from the manifest. Pure: the adapters deliver it (EventBridge, a signed webhook)."""

from __future__ import annotations

import hashlib
import json
from typing import Literal

from pydantic import BaseModel, ConfigDict

from reframe_pipeline.domain.manifest import Manifest, VariantRecord

NOTICE_SOURCE = "reframe.pipeline"
READY = "Reframe Variants Ready"
REMOVED = "Reframe Variants Removed"


class _Notice(BaseModel):
    # Written, never read: the schema marks fields with defaults as present too.
    model_config = ConfigDict(json_schema_serialization_defaults_required=True)


class NoticeSource(_Notice):
    key: str
    etag: str | None  # None once the source is deleted
    version: str | None


class NoticeRendition(_Notice):
    """A deliverable: one format at one width, in ``output_bucket``."""

    key: str
    format: str
    width: int
    height: int
    url: str | None = None  # under PUBLIC_BASE_URL, when set


class NoticeVariant(_Notice):
    name: str
    key: str | None  # the first rendition's
    status: Literal["created", "existing", "failed", "removed"]
    size: str | None = None  # "WxH" of the variant written
    error_code: str | None = None
    renditions: list[NoticeRendition] = []  # every deliverable of the variant (written, or removed)


def _variant(record: VariantRecord, status: str | None = None) -> NoticeVariant:
    r = record
    return NoticeVariant(
        name=r.name,
        key=r.key,
        status=status or r.status,  # a record's status, or "removed"
        size=f"{r.width}x{r.height}" if r.width and r.height else None,
        error_code=r.error.code if r.error and status is None else None,
        renditions=[NoticeRendition(**item.model_dump(exclude={"bytes"})) for item in r.renditions],
    )


class NoticeCounts(_Notice):
    created: int = 0
    existing: int = 0
    failed: int = 0
    removed: int = 0


class NoticeDetail(_Notice):
    """The ``detail`` of a ``Reframe Variants Ready`` or ``Reframe Variants Removed`` event."""

    # Raised on a change a consumer must know of. 2: deliverables may be in another bucket (output_bucket),
    # and each variant lists its renditions (keys and URLs).
    schema_version: Literal[2] = 2
    # The same for the same outcome (a redelivery that changes nothing): consumers de-duplicate on it.
    event_id: str
    bucket: str  # the source's, where the manifest is
    output_bucket: str  # where the deliverables are (OUTPUT_BUCKET; the source's by default)
    source: NoticeSource
    manifest_key: str
    status: Literal["completed", "partial", "failed", "removed"]
    counts: NoticeCounts
    variants: list[NoticeVariant]
    cost_usd: float  # spent by the run that sends the notice (0 for a redelivery that made nothing)
    correlation_id: str

    @property
    def detail_type(self) -> str:
        return REMOVED if self.status == "removed" else READY


def _event_id(*facts: object) -> str:
    return hashlib.sha256(json.dumps(facts, sort_keys=True).encode()).hexdigest()[:32]


def ready(manifest: Manifest, manifest_key: str, correlation_id: str) -> NoticeDetail:
    # The outcome of the configuration: files of targets it no longer has are listed in the manifest only.
    records = [r for r in manifest.variants if r.status != "unconfigured"]
    made = sum(r.status != "failed" for r in records)
    status = "completed" if made == len(records) and manifest.error is None else "partial" if made else "failed"
    variants = [_variant(r) for r in records]
    source = manifest.source
    # created and existing are the same outcome (the variant is there): a redelivery keeps the id. A variant
    # made again under the same key (another seed or other parameters) is a new one, and so is a fallback
    # (FALLBACK_PROVIDER) against the provider's variant that later replaces it. Nothing of the run itself (its
    # time, cost or attempts) goes in: a redelivery a second later is the same outcome.
    outcome = [
        (
            v.name,
            [x.key for x in v.renditions] or v.key,
            v.error_code or ("fallback" if r.fallback_reason else "ready"),
            r.param_hash,
            r.seed,
        )
        for v, r in zip(variants, records, strict=True)
    ]
    return NoticeDetail(
        event_id=_event_id(source.bucket, source.key, source.etag, source.version, status, outcome),
        bucket=source.bucket,
        output_bucket=manifest.output_bucket or source.bucket,
        source=NoticeSource(key=source.key, etag=source.etag, version=source.version),
        manifest_key=manifest_key,
        status=status,
        counts=NoticeCounts(**{k: sum(r.status == k for r in records) for k in ("created", "existing", "failed")}),
        variants=variants,
        cost_usd=round(sum(r.cost_usd for r in records), 6),
        correlation_id=correlation_id,
    )


def files_gone(keys: list[str]) -> list[VariantRecord]:
    """Variants known only by their files (an output folder without a manifest): each named by its file."""
    return [VariantRecord(name=key.rsplit("/", 1)[-1].rsplit(".", 1)[0], key=key, status="created") for key in keys]


def removed(
    bucket: str,
    source_key: str,
    manifest_key: str,
    gone: list[VariantRecord],
    correlation_id: str,
    output_bucket: str | None = None,
) -> NoticeDetail:
    """A deleted source's variants, ``gone`` (as its last manifest listed them), and its manifest are gone."""
    variants = [_variant(record, "removed") for record in sorted(gone, key=lambda r: r.name)]
    keys = sorted(x.key for v in variants for x in v.renditions) or sorted(v.key or "" for v in variants)
    return NoticeDetail(
        event_id=_event_id(bucket, source_key, "removed", keys),
        bucket=bucket,
        output_bucket=output_bucket or bucket,
        source=NoticeSource(key=source_key, etag=None, version=None),
        manifest_key=manifest_key,
        status="removed",
        counts=NoticeCounts(removed=len(variants)),
        variants=variants,
        cost_usd=0.0,
        correlation_id=correlation_id,
    )
