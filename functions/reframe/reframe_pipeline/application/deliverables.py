"""A variant's deliverables in OUTPUT_BUCKET (docs/outputs.md): written optimized, signed and checked at
the key template's keys with their Content-Type and Cache-Control; found again by a later run through the
source's last manifest; deleted once no manifest wants them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from reframe_pipeline.application.object_metadata import META_CREDENTIALS
from reframe_pipeline.application.ports import Storage
from reframe_pipeline.domain.delivery import Delivery
from reframe_pipeline.domain.errors import PermanentError
from reframe_pipeline.domain.finishing import Rendered
from reframe_pipeline.domain.imaging import FORMATS, ImageCheckError, verify
from reframe_pipeline.domain.key_template import KeyFacts, content_hash
from reframe_pipeline.domain.manifest import Manifest, Rendition, VariantRecord
from reframe_pipeline.domain.renditions import Sized, srcsets

# A deliverable's bytes made smaller without a pixel changed (adapters/optimizers.py).
Optimizer = Callable[[bytes, str], bytes]
# Content Credentials for a deliverable's bytes (its format key): the signed bytes, or None when signing is off.
Sign = Callable[[bytes, str], bytes | None]
_EXT_FORMAT = {spec.ext: name for name, spec in FORMATS.items()} | {"jpeg": "jpeg"}


class Publisher:
    def __init__(self, delivery: Delivery, optimize: Optimizer) -> None:
        self.delivery = delivery
        self.optimize = optimize

    def longest_key(self, path: str, name: str) -> str:
        """The longest key a deliverable of this target can get: checked against S3's limit before paying."""
        return self.delivery.template.render(KeyFacts(path, name, 4096, 4096, "webp", "f" * 64))

    def publish(
        self, out: Storage, path: str, name: str, rendered: list[Rendered], metadata: dict[str, str], sign: Sign
    ) -> tuple[list[Rendition], bool]:
        """Write each rendition of target ``name`` of the source at ``path`` (below INPUT_PREFIX) to ``out``;
        also says whether every one carries Content Credentials."""
        written = []
        every_signed = True
        for item in rendered:
            body = self.optimize(item.body, item.fmt)  # before signing: the signature binds every byte
            signed = sign(body, item.fmt)
            every_signed = every_signed and signed is not None
            body = signed or body
            try:  # every deliverable is changed by its marking at least: checked again
                verify(body, item.spec.size)
            except ImageCheckError as exc:  # our own output: a bug, not the user's input
                raise PermanentError(f"output check failed: {exc}", code="output_check") from None
            spec = FORMATS[item.fmt]
            facts = KeyFacts(path, name, item.spec.width, item.spec.height, spec.ext, content_hash(body))
            key = self.delivery.template.render(facts)
            marked = {**metadata, META_CREDENTIALS: "c2pa"} if signed is not None else metadata
            out.write(key, body, spec.mime, marked, cache_control=self.delivery.cache_control)
            written.append(
                Rendition(
                    key=key,
                    format=item.fmt,
                    width=item.spec.width,
                    height=item.spec.height,
                    bytes=len(body),
                    url=self.delivery.url(key),
                )
            )
        return written, every_signed

    def with_urls(self, renditions: list[Rendition]) -> list[Rendition]:
        """Renditions found again, their URLs under today's PUBLIC_BASE_URL."""
        return [r.model_copy(update={"url": self.delivery.url(r.key)}) for r in renditions]


def srcset_of(renditions: list[Rendition]) -> dict[str, str]:
    return srcsets(Sized(r.format, r.width, r.url or r.key) for r in renditions)


def delivered(renditions: list[Rendition]) -> dict[str, Any]:
    """A variant record's fields that list its deliverables."""
    return {"renditions": renditions, "srcset": srcset_of(renditions)}


def published(manifest: Manifest | None) -> dict[str, list[Rendition]]:
    """The deliverables a manifest lists, by target name (a manifest from before renditions: each variant's key;
    a variant failed in its run: those of an earlier run, still published)."""
    if manifest is None:
        return {}
    return {v.name: v.renditions or [_legacy(v)] for v in manifest.variants if v.renditions or v.key}


UNCONFIGURED_NOTE = "no target of the configuration makes it any more: kept until the sidecar says prune"


def carry_over(
    previous: Manifest | None, records: list[VariantRecord], bucket: str, prune: bool
) -> list[VariantRecord]:
    """``records`` with what stays published from the last manifest (in ``bucket``), so the next manifest still
    knows it (to find it again, or delete it): on each variant that failed now, its deliverables; and, without
    ``prune``, the variants of targets gone from the config, listed as unconfigured (kept)."""
    if previous is None or bucket_of(previous) != bucket:
        return records
    earlier = published(previous)
    carried = [
        r.model_copy(update={"renditions": earlier[r.name]}) if r.status == "failed" and r.name in earlier else r
        for r in records
    ]
    names = {r.name for r in records}
    kept = [] if prune else [v for v in previous.variants if v.name in earlier and v.name not in names]
    return carried + [
        v.model_copy(update={"status": "unconfigured", "cost_usd": 0.0, "note": UNCONFIGURED_NOTE}) for v in kept
    ]


def _legacy(record: VariantRecord) -> Rendition:
    return single_file(record.key or "", record.width or 0, record.height or 0, 0)


def single_file(key: str, width: int, height: int, size: int) -> Rendition:
    """The one deliverable of a variant written before renditions (its format from its extension)."""
    fmt = _EXT_FORMAT.get(key.rsplit(".", 1)[-1], "png")
    return Rendition(key=key, format=fmt, width=width, height=height, bytes=size)


def unwanted(previous: Manifest | None, current: Manifest, prune: bool) -> list[str]:
    """Deliverables of ``previous`` that ``current`` no longer lists: another format, width or {hash}, a target
    removed (with ``prune``). A target that failed now keeps what it had: another invocation may have just
    written it, and a failure is no reason to unpublish."""
    planned = {r.name: r.status for r in current.variants}
    moved = previous is not None and bucket_of(previous) != bucket_of(current)  # OUTPUT_BUCKET changed meanwhile
    keep = set() if moved else current.deliverable_keys()
    gone = set()
    for name, renditions in published(previous).items():
        status = planned.get(name)
        if status == "failed" or (status is None and not prune):
            continue
        gone |= {r.key for r in renditions if r.key not in keep}
    return sorted(gone)


def bucket_of(manifest: Manifest) -> str:
    """Where a manifest's deliverables are (one from before OUTPUT_BUCKET: the source's bucket)."""
    return manifest.output_bucket or manifest.source.bucket
