"""The review gallery: every source with its variants, rendered on the server as one HTML page.

``reframe serve`` serves it live (with a regenerate form on each variant), ``reframe report`` writes it
as one static file for a deployed bucket. The page is a Jinja2 template (templates/gallery.html.jinja) with
autoescape on: keys and values come from the bucket, and keys are chosen by whoever uploads. The filters are
CSS (radio buttons and ``:has``); the live page's one script polls for a change of the bucket.

What the template shows is first turned into views here (``SourceView``, ``VariantView``): a manifest whose
shape is not what the pipeline writes becomes one error card, and the rest of the page is shown.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import cache
from typing import Any, TextIO

import jinja2

from reframe_pipeline.domain.events import MANIFEST_NAME

from .progress import Progress
from .words import counted

FILTERS = ("all", "failed", "flagged")
READERS = 8  # manifests read at a time (boto3 clients are thread-safe; its default pool holds 10 connections)
UNREADABLE = "unreadable_manifest"
# What a variant's "source match" is, for the page's legend and the score's tooltip.
MATCH_TEXT = (
    "how much of the source survives unchanged in the variant, from 0 to 1 (the structural similarity of the"
    " source and the part of the variant where it was found; 1 is untouched)."
)

ImageUrl = Callable[[str], str]


def flags(variant: dict[str, Any]) -> list[str]:
    """What a reviewer should look at in this variant, one short line each (empty: nothing): a fallback
    made it, or a check warned about it (``warning``/``warnings``, as the source check adds them)."""
    found: list[str] = []
    reason = variant.get("fallback_reason")
    if reason:
        found.append(f"fallback ({reason.get('code', '?')}): {reason.get('message', '')}")
    for name in ("warning", "warnings"):
        value = variant.get(name)
        if isinstance(value, list):
            found.extend(str(item) for item in value)
        elif value:
            found.append(str(value))
    return found


@dataclass(frozen=True)
class VariantView:
    name: str
    status: str
    key: str | None
    image: str | None
    seed: object
    rows: list[tuple[str, str]]
    errors: list[str]
    warnings: list[str]
    note: str | None
    cost_usd: float
    local: bool  # made by the local engine, which ignores the seed

    @property
    def failed(self) -> bool:
        return self.status == "failed"

    @property
    def flagged(self) -> bool:
        return bool(self.warnings)

    @property
    def regenerable(self) -> bool:
        """Still a target of its source's configuration: an unconfigured one has nothing to be made again from."""
        return self.status != "unconfigured"

    @property
    def classes(self) -> str:
        return " ".join(["variant", f"status-{self.status}"] + ["failed"] * self.failed + ["flagged"] * self.flagged)


@dataclass(frozen=True)
class SourceView:
    key: str
    config: str = ""
    generated_at: str = ""
    image: str | None = None
    error: str | None = None  # rejected (or unreadable): "code: message"; no variant made
    unreadable: bool = False
    targets: list[str] = field(default_factory=list)  # a rejected source: the targets its configuration named
    variants: list[VariantView] = field(default_factory=list)

    @property
    def classes(self) -> str:
        failed = self.error is not None or any(v.failed for v in self.variants)
        return " ".join(["source"] + ["has-failed"] * failed + ["has-flagged"] * any(v.flagged for v in self.variants))


def _text(value: object) -> str:
    return "-" if value is None else str(value)


def _usd(value: object) -> str:
    return f"${float(value or 0.0):.3f}"  # type: ignore[arg-type]


def _rows(variant: dict[str, Any]) -> list[tuple[str, str]]:
    width, height = variant.get("width"), variant.get("height")
    rows = [
        ("size", f"{width}x{height}" if width and height else "-"),
        ("status", str(variant.get("status"))),
        ("provider", str(variant.get("provider") or "-")),
        ("seed", _text(variant.get("seed"))),
        ("cost", _usd(variant.get("cost_usd"))),
    ]
    if variant.get("rendered_from_generation"):
        rows.append(("rendered", "from a kept generation"))
    if variant.get("source_match") is not None:
        rows.append(("source match", f"{float(variant['source_match']):.2f}"))
    provenance = variant.get("provenance")
    if isinstance(provenance, dict) and provenance.get("model"):
        signed = ", signed" if provenance.get("signed") else ""
        rows.append(("provenance", f"{provenance['model']}{signed}"))
    return rows


def _error_line(error: dict[str, Any]) -> str:
    return f"{error.get('code')}: {error.get('message')}"


def _variant_view(variant: dict[str, Any], image_url: ImageUrl) -> VariantView:
    """``image_url``: of a key in the bucket of the manifest's deliverables."""
    key = variant.get("key")
    status = str(variant.get("status"))
    error = variant.get("error")
    return VariantView(
        name=str(variant.get("name")),
        status=status,
        key=key,
        # Presigning costs a signature: once per image.
        image=image_url(str(key)) if key and status != "failed" else None,
        seed=variant.get("seed"),
        rows=_rows(variant),
        errors=[_error_line(error)] if error else [],
        warnings=flags(variant),
        note=str(variant["note"]) if variant.get("note") else None,
        cost_usd=float(variant.get("cost_usd") or 0.0),
        local=variant.get("provider") == "local",
    )


def _source_key(manifest: dict[str, Any]) -> str:
    source = manifest.get("source")
    return str(source.get("key", "?")) if isinstance(source, dict) else "?"


def source_view(manifest: dict[str, Any], image_url: ImageUrl, source_url: ImageUrl | None = None) -> SourceView:
    """What the page shows of one manifest. A manifest in any other shape than the pipeline's is one error card."""
    key = _source_key(manifest)
    try:
        return _source_view(key, manifest, image_url, source_url)
    except (AttributeError, KeyError, TypeError, ValueError) as exc:
        return SourceView(key, error=f"{UNREADABLE}: not a manifest the pipeline writes ({exc!r})", unreadable=True)


def _source_view(key: str, manifest: dict[str, Any], image_url: ImageUrl, source_url: ImageUrl | None) -> SourceView:
    error = manifest.get("error")
    if error and error.get("code") == UNREADABLE:
        return SourceView(key, error=_error_line(error), unreadable=True)
    config = manifest.get("config") or {}
    variants = manifest.get("variants") or []
    for name, value, kind in (("source", manifest.get("source"), dict), ("variants", variants, list)):
        if not isinstance(value, kind):
            raise TypeError(f"{name} is a {type(value).__name__}, not a {kind.__name__}")
    return SourceView(
        key,
        config=f"config: {config.get('from', '?')}" + (f" ({config['key']})" if config.get("key") else ""),
        generated_at=str(manifest.get("generated_at")),
        image=source_url(key) if source_url is not None else None,
        error=_error_line(error) if error else None,
        # A rejected source made nothing: its targets are named on its one card, not shown as failed variants.
        targets=[str(v.get("name")) for v in variants if v.get("name") != "*"] if error else [],
        variants=[] if error else [_variant_view(v, _in_output_bucket(manifest, image_url)) for v in variants],
    )


def _in_output_bucket(manifest: dict[str, Any], image_url: ImageUrl) -> ImageUrl:
    """Deliverables are where the manifest says (OUTPUT_BUCKET), which may be another bucket than its source's."""
    bucket, source = manifest.get("output_bucket"), manifest["source"].get("bucket")
    if not bucket or bucket == source:
        return image_url
    return lambda key: image_url(key, bucket=bucket)  # type: ignore[call-arg]


@dataclass
class Totals:
    sources: int = 0
    variants: int = 0
    failed: int = 0
    flagged: int = 0
    rejected_sources: int = 0  # a manifest-level error: no variant made, none counted
    unreadable: int = 0  # manifests that do not parse or are not in the pipeline's shape
    cost_usd: float = 0.0
    by_status: dict[str, int] = field(default_factory=dict)


def _totals(views: Iterable[SourceView]) -> Totals:
    result = Totals()
    for view in views:
        result.sources += 1
        result.unreadable += view.unreadable
        result.rejected_sources += view.error is not None and not view.unreadable
        for variant in view.variants:
            result.variants += 1
            result.by_status[variant.status] = result.by_status.get(variant.status, 0) + 1
            result.failed += variant.failed
            result.flagged += variant.flagged
            result.cost_usd += variant.cost_usd
    return result


def totals(manifests: Iterable[dict[str, Any]]) -> Totals:
    return _totals(source_view(m, str) for m in manifests)


def seeds(manifests: Iterable[dict[str, Any]]) -> dict[tuple[str, str], object]:
    """The seed of each (source, variant) the manifests show."""
    views = (source_view(m, str) for m in manifests)
    return {(view.key, v.name): v.seed for view in views for v in view.variants}


def manifest_keys(s3: Any, bucket: str, prefix: str) -> list[str]:
    """The keys of every manifest under ``prefix``, in key order."""
    keys: list[str] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys += [item["Key"] for item in page.get("Contents", []) if item["Key"].endswith("/" + MANIFEST_NAME)]
    return sorted(keys)


def load_manifests(
    s3: Any, bucket: str, prefix: str, progress: TextIO | None = None, workers: int = READERS
) -> list[dict[str, Any]]:
    """Every manifest under ``prefix``, parsed, in key order, read ``workers`` at a time; a progress bar on
    ``progress`` while they are read. A manifest that does not parse is kept as an unreadable one, not skipped."""
    keys = manifest_keys(s3, bucket, prefix)
    with ThreadPoolExecutor(max_workers=workers) as pool, Progress(progress, len(keys), "manifest") as bar:
        manifests = []
        for key, body in zip(keys, pool.map(lambda k: _read(s3, bucket, k), keys), strict=True):
            manifests.append(_parse(key, body))
            bar.step(key)
    return manifests


def _read(s3: Any, bucket: str, key: str) -> bytes:
    body: bytes = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    return body


def _parse(key: str, body: bytes) -> dict[str, Any]:
    try:
        document = json.loads(body)
        if not isinstance(document, dict):
            raise ValueError("not a JSON object")
    except ValueError as exc:
        document = {
            "source": {"key": key.removesuffix("/" + MANIFEST_NAME)},
            "variants": [],
            "error": {"code": UNREADABLE, "message": f"{key}: {exc}"},
        }
    return document


def presigner(s3: Any, bucket: str, expires_s: int) -> ImageUrl:
    """Presigned URLs of keys in ``bucket``, or in another (``bucket=``: a manifest's OUTPUT_BUCKET)."""

    def url(key: str, bucket: str = bucket) -> str:
        return str(s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=expires_s))

    return url


@cache
def _templates() -> jinja2.Environment:
    environment = jinja2.Environment(
        loader=jinja2.PackageLoader("reframe_cli", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters["counted"] = counted
    environment.filters["usd"] = _usd
    return environment


def match_text(match_min: float | None) -> str:
    threshold = f"{match_min:g}" if match_min is not None else "SOURCE_MATCH_MIN"
    return f"{MATCH_TEXT} Below {threshold} (SOURCE_MATCH_MIN) the variant is flagged source_altered: look at it."


def render(
    manifests: list[dict[str, Any]],
    image_url: ImageUrl,
    *,
    title: str,
    show: str = "all",
    notice: str = "",
    regenerate: str | None = None,
    token: str = "",
    refresh_s: int | None = None,
    version: str | None = None,
    messages: list[str] | None = None,
    source_url: ImageUrl | None = None,
    match_min: float | None = None,
) -> str:
    """The page. ``show`` picks the filter checked at first (FILTERS); ``notice`` is a line under the title
    (the presigned URLs' expiry, say); ``regenerate`` the URL a variant's regenerate form posts to, with
    ``token`` in it (none: no form); ``refresh_s`` makes the page reload itself every so many seconds. A live
    page (``version``, a token of the bucket's state) instead asks ``version`` at that interval and reloads
    only when it changed; its filters are links (the choice survives a reload), and ``messages`` are lines shown
    under the title. ``source_url`` links each source's own image beside its variants; ``match_min`` is the
    SOURCE_MATCH_MIN the legend of "source match" names."""
    views = sorted((source_view(m, image_url, source_url) for m in manifests), key=lambda view: view.key)
    t = _totals(views)
    return (
        _templates()
        .get_template("gallery.html.jinja")
        .render(
            title=title,
            notice=notice,
            messages=messages or [],
            totals=t,
            statuses=", ".join(f"{n} {status}" for status, n in sorted(t.by_status.items())) or "none",
            scored=any(name == "source match" for view in views for v in view.variants for name, _ in v.rows),
            match_text=match_text(match_min),
            filters=FILTERS,
            show=show if show in FILTERS else "all",
            version=version,
            refresh_s=int(refresh_s) if refresh_s else None,
            sources=views,
            regenerate=regenerate,
            token=token,
        )
    )


def expiry_text(expires_s: int) -> str:
    hours, rest = divmod(expires_s, 3600)
    span = f"{hours} h" + (f" {rest // 60} min" if rest >= 60 else "") if hours else f"{max(1, expires_s // 60)} min"
    return span
