"""The review gallery: every source with its variants, rendered on the server as one HTML page.

``reframe serve`` serves it live (with a regenerate form on each variant), ``reframe report`` writes it
as one static file for a deployed bucket. No JavaScript: the filters are CSS (radio buttons and
``:has``), the live page refreshes itself with a meta refresh. Every key and value from the bucket is
escaped: keys are chosen by whoever uploads.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from html import escape
from typing import Any, TextIO

from reframe_pipeline.domain.events import MANIFEST_NAME

from .progress import Progress

FILTERS = ("all", "failed", "flagged")
# A manifest field that, when set on a variant, asks a reviewer to look: a fallback made it, or a check
# warned about it (``warning``/``warnings``, as the source check adds them).
_FLAG_FIELDS = ("fallback_reason", "warning", "warnings")
READERS = 8  # manifests read at a time (boto3 clients are thread-safe; its default pool holds 10 connections)

ImageUrl = Callable[[str], str]


def is_failed(variant: dict[str, Any]) -> bool:
    return variant.get("status") == "failed"


def flags(variant: dict[str, Any]) -> list[str]:
    """What a reviewer should look at in this variant, one short line each (empty: nothing)."""
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


def is_flagged(variant: dict[str, Any]) -> bool:
    return bool(flags(variant))


def matches(variant: dict[str, Any], show: str) -> bool:
    """Whether ``show`` (one of FILTERS) keeps this variant."""
    if show == "failed":
        return is_failed(variant)
    if show == "flagged":
        return is_flagged(variant)
    return True


@dataclass
class Totals:
    sources: int = 0
    variants: int = 0
    failed: int = 0
    flagged: int = 0
    rejected_sources: int = 0  # a manifest-level error: no variant made
    cost_usd: float = 0.0
    by_status: dict[str, int] = field(default_factory=dict)


def totals(manifests: Iterable[dict[str, Any]]) -> Totals:
    result = Totals()
    for manifest in manifests:
        result.sources += 1
        if manifest.get("error"):
            result.rejected_sources += 1
        for variant in manifest.get("variants", []):
            result.variants += 1
            status = str(variant.get("status"))
            result.by_status[status] = result.by_status.get(status, 0) + 1
            result.failed += is_failed(variant)
            result.flagged += is_flagged(variant)
            result.cost_usd += float(variant.get("cost_usd") or 0.0)
    return result


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
    ``progress`` while they are read. A manifest that does not parse is shown as a rejected source, not skipped."""
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
            "error": {"code": "unreadable_manifest", "message": f"{key}: {exc}"},
        }
    return document


def presigner(s3: Any, bucket: str, expires_s: int) -> ImageUrl:
    def url(key: str) -> str:
        return str(s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=expires_s))

    return url


def _e(value: object) -> str:
    return escape("" if value is None else str(value), quote=True)


def _size(variant: dict[str, Any]) -> str:
    width, height = variant.get("width"), variant.get("height")
    return f"{width}x{height}" if width and height else "-"


def _cost(value: object) -> str:
    return f"${float(value or 0.0):.3f}"  # type: ignore[arg-type]


def _details(variant: dict[str, Any]) -> list[tuple[str, str]]:
    rows = [
        ("size", _size(variant)),
        ("status", str(variant.get("status"))),
        ("provider", str(variant.get("provider") or "-")),
        ("seed", str(variant.get("seed") if variant.get("seed") is not None else "-")),
        ("cost", _cost(variant.get("cost_usd"))),
    ]
    if variant.get("rendered_from_generation"):
        rows.append(("rendered", "from a kept generation"))
    if variant.get("source_match") is not None:
        rows.append(("source match", str(variant["source_match"])))
    provenance = variant.get("provenance")
    if isinstance(provenance, dict) and provenance.get("model"):
        signed = ", signed" if provenance.get("signed") else ""
        rows.append(("provenance", f"{provenance['model']}{signed}"))
    return rows


def _variant_html(source_key: str, variant: dict[str, Any], image_url: ImageUrl, regenerate: str | None) -> str:
    classes = ["variant", f"status-{variant.get('status')}"]
    if is_failed(variant):
        classes.append("failed")
    flagged = flags(variant)
    if flagged:
        classes.append("flagged")
    key = variant.get("key")
    if key and not is_failed(variant):
        link = _e(image_url(key))  # presigning costs a signature: once per image
        thumb = f'<a href="{link}"><img loading="lazy" src="{link}" alt="{_e(key)}"></a>'
    else:
        thumb = '<div class="missing">no image</div>'
    rows = "".join(f"<dt>{_e(name)}</dt><dd>{_e(value)}</dd>" for name, value in _details(variant))
    notes: list[str] = []
    error = variant.get("error")
    if error:
        notes.append(f'<p class="error">{_e(error.get("code"))}: {_e(error.get("message"))}</p>')
    notes += [f'<p class="warning">{_e(line)}</p>' for line in flagged]
    if variant.get("note"):
        notes.append(f'<p class="note">{_e(variant["note"])}</p>')
    form = ""
    if regenerate is not None:
        form = (
            f'<form method="post" action="{_e(regenerate)}">'
            f'<input type="hidden" name="source" value="{_e(source_key)}">'
            f'<input type="hidden" name="variant" value="{_e(variant.get("name"))}">'
            '<button type="submit" class="regenerate">regenerate</button></form>'
        )
    return (
        f'<figure class="{_e(" ".join(classes))}" data-variant="{_e(variant.get("name"))}">'
        f"{thumb}<figcaption><strong class='name'>{_e(variant.get('name'))}</strong>"
        f"<dl>{rows}</dl>{''.join(notes)}{form}</figcaption></figure>"
    )


def _source_html(manifest: dict[str, Any], image_url: ImageUrl, regenerate: str | None) -> str:
    source = manifest.get("source") or {}
    key = str(source.get("key", "?"))
    variants = manifest.get("variants") or []
    classes = ["source"]
    if any(is_failed(v) for v in variants) or manifest.get("error"):
        classes.append("has-failed")
    if any(is_flagged(v) for v in variants):
        classes.append("has-flagged")
    error = manifest.get("error")
    config = manifest.get("config") or {}
    origin = config.get("from", "?")
    config_text = f"config: {origin}" + (f" ({config['key']})" if config.get("key") else "")
    rejected = f'<p class="error">{_e(error.get("code"))}: {_e(error.get("message"))}</p>' if error else ""
    # A rejected configuration has no target to give a new seed to: fix the sidecar instead.
    form_to = None if error else regenerate
    cards = "".join(_variant_html(key, v, image_url, form_to) for v in variants)
    return (
        f'<section class="{" ".join(classes)}" data-source="{_e(key)}">'
        f"<h2>{_e(key)}</h2><p class='meta'>{_e(config_text)} · generated {_e(manifest.get('generated_at'))}</p>"
        f'{rejected}<div class="variants">{cards}</div></section>'
    )


_STYLE = """
body{font-family:system-ui,sans-serif;margin:1rem;background:#fafafa;color:#222}
header p{margin:.2rem 0}
.filters label{margin-right:1rem}
.filters input{position:absolute;opacity:0}
.filters a{color:inherit;text-decoration:none}
.message{background:#eef;padding:.3rem}
.filters label span{padding:.2rem .6rem;border:1px solid #888;border-radius:1rem;cursor:pointer}
.filters input:checked+span{background:#222;color:#fff}
.variants{display:flex;flex-wrap:wrap;gap:.8rem}
figure{margin:0;width:200px;background:#fff;border:1px solid #ddd;padding:.4rem;border-radius:4px}
figure img{width:100%;height:140px;object-fit:contain;background:#eee}
figure.failed{border-color:#c00}
figure.flagged{border-color:#e90}
.missing{height:140px;display:flex;align-items:center;justify-content:center;background:#eee;color:#888}
dl{display:grid;grid-template-columns:auto 1fr;gap:0 .5rem;font-size:.8rem;margin:.3rem 0}
dt{color:#666}dd{margin:0;overflow-wrap:anywhere}
.error{color:#c00;font-size:.8rem}.warning{color:#a60;font-size:.8rem}.note{color:#555;font-size:.8rem}
h2{font-size:1rem;overflow-wrap:anywhere}
body:has(#show-failed:checked) figure:not(.failed),
body:has(#show-failed:checked) section:not(.has-failed),
body:has(#show-flagged:checked) figure:not(.flagged),
body:has(#show-flagged:checked) section:not(.has-flagged){display:none}
"""


def _poll_script(version: str, interval_s: int) -> str:
    """The live page's one script: reload when the bucket's state differs from the one rendered. Without
    JavaScript, a plain refresh at the same interval."""
    token = json.dumps(version).replace("<", "\\u003c")
    return (
        f'<noscript><meta http-equiv="refresh" content="{interval_s}"></noscript>'
        f"<script>const rendered={token};"
        "setInterval(async()=>{try{const r=await fetch('version',{cache:'no-store'});"
        "if(r.ok&&(await r.text())!==rendered)location.reload();}catch(e){}},"
        f"{interval_s * 1000});</script>"
    )


def render(
    manifests: list[dict[str, Any]],
    image_url: ImageUrl,
    *,
    title: str,
    show: str = "all",
    notice: str = "",
    regenerate: str | None = None,
    refresh_s: int | None = None,
    version: str | None = None,
    messages: list[str] | None = None,
) -> str:
    """The page. ``show`` picks the filter checked at first (FILTERS); ``notice`` is a line under the title
    (the presigned URLs' expiry, say); ``regenerate`` the URL a variant's regenerate form posts to (none:
    no form); ``refresh_s`` makes the page reload itself every so many seconds. A live page (``version``, a
    token of the bucket's state) instead asks ``version`` at that interval and reloads only when it changed;
    its filters are links (the choice survives a reload), and ``messages`` are lines shown under the title."""
    if show not in FILTERS:
        show = "all"
    ordered = sorted(manifests, key=lambda m: str((m.get("source") or {}).get("key", "")))
    t = totals(ordered)
    statuses = ", ".join(f"{n} {status}" for status, n in sorted(t.by_status.items())) or "none"
    if version is None:
        radios = "".join(
            f'<label><input type="radio" name="show" id="show-{name}" value="{name}"'
            f"{' checked' if name == show else ''}><span>{name}</span></label>"
            for name in FILTERS
        )
    else:
        radios = "".join(
            f'<label><input type="radio" name="show" id="show-{name}" value="{name}" disabled'
            f'{" checked" if name == show else ""}><span><a href="?show={name}">{name}</a></span></label>'
            for name in FILTERS
        )
    refresh = ""
    if refresh_s and version is None:
        refresh = f'<meta http-equiv="refresh" content="{int(refresh_s)}">'
    elif refresh_s:
        refresh = _poll_script(version or "", int(refresh_s))
    shown = "".join(f'<p class="message">{_e(line)}</p>' for line in messages or [])
    body = "".join(_source_html(m, image_url, regenerate) for m in ordered) or "<p>No manifests yet.</p>"
    return (
        "<!doctype html>\n"
        f'<html lang="en"><head><meta charset="utf-8">{refresh}<title>{_e(title)}</title>'
        f"<style>{_STYLE}</style></head><body>"
        f"<header><h1>{_e(title)}</h1>"
        + (f'<p class="notice">{_e(notice)}</p>' if notice else "")
        + shown
        + f'<p class="totals">{t.sources} sources, {t.variants} variants ({_e(statuses)}); '
        f'<span class="failures">{t.failed} failed</span>, {t.flagged} flagged, '
        f"{t.rejected_sources} sources rejected; "
        f'cost <span class="cost">{_cost(t.cost_usd)}</span></p>'
        f'<p class="filters">show: {radios}</p></header><main>{body}</main></body></html>\n'
    )


def expiry_text(expires_s: int) -> str:
    hours, rest = divmod(expires_s, 3600)
    span = f"{hours} h" + (f" {rest // 60} min" if rest >= 60 else "") if hours else f"{max(1, expires_s // 60)} min"
    return span


def write_report(
    url: str, output: TextIO, err: TextIO, *, expires_s: int, s3: Any | None = None, now: str | None = None
) -> Totals:
    """``reframe report s3://BUCKET/PREFIX``: the gallery of every manifest under PREFIX (default: the
    OUTPUT_PREFIX setting) as one static page, its images by presigned URL valid ``expires_s``."""
    from datetime import UTC, datetime

    import boto3

    from reframe_pipeline.settings import Settings

    from .backfill import parse_s3_url

    bucket, prefix = parse_s3_url(url)
    prefix = prefix or Settings.from_env().output_prefix
    client = s3 if s3 is not None else boto3.client("s3")
    manifests = load_manifests(client, bucket, prefix, progress=err)
    stamp = now or datetime.now(UTC).isoformat(timespec="seconds")
    notice = (
        f"s3://{bucket}/{prefix}, read {stamp}. Images are presigned URLs valid {expiry_text(expires_s)} from then:"
        " run the report again for fresh links."
    )
    output.write(render(manifests, presigner(client, bucket, expires_s), title="Reframe review", notice=notice))
    return totals(manifests)
