"""``reframe demo``: the sample images go through the local stack (S3 -> SQS -> poller -> handler);
the variants, manifests, a contact sheet, the notices announced and the handler's logs land in one folder."""

from __future__ import annotations

import json
import os
import shutil
import time
from collections import Counter
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import quote

from PIL import Image

from reframe_local.moto_stack import MotoStack, wait_until
from reframe_local.poller import BatchReport
from reframe_pipeline.application.discovery import candidate_keys
from reframe_pipeline.application.outputs import output_dir
from reframe_pipeline.domain.events import MANIFEST_NAME
from reframe_pipeline.domain.planning import generation_payers, plan
from reframe_pipeline.domain.pricing import estimate
from reframe_pipeline.domain.sidecar import parse_sidecar
from reframe_pipeline.settings import Settings

from . import gallery
from .contact_sheet import Tile, contact_sheet
from .logs import handler_output_to
from .samples import IMAGES, UPLOADS, sidecar_seed
from .tables import markdown_table
from .validate import requested

_DONE = ("created", "existing")
# The paid provider whose prices docs/demo.md quotes.
_PRICED = "segmind"


# Long for a reason: the demo's story in order (stack up, uploads, wait, download, contact sheet, summary).
def run(output: Path, out: TextIO, *, pollers: int, timeout_s: float) -> int:
    """Run the demo; 0 when every variant was produced. ``out`` is the terminal: the handler's own
    output goes to ``output/logs.jsonl``."""
    clock = time.monotonic()
    # Every sidecar and folder default is in the bucket before the images: no image has one to wait for.
    os.environ.setdefault("SIDECAR_WAIT_S", "0")
    settings = Settings.from_env()
    sources = {settings.input_prefix + key: IMAGES / name for name, key in UPLOADS.items()}
    manifest_keys = {key: output_dir(key, settings) + MANIFEST_NAME for key in sources}
    output.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(output / settings.output_prefix, ignore_errors=True)  # results of an earlier run

    def report_errors(report: BatchReport) -> None:
        if report.error is not None:
            print(f"  batch failed, will be retried: {report.error!r}", file=out, flush=True)

    with (
        (output / "logs.jsonl").open("w") as log,
        handler_output_to(log),
        MotoStack.start(output, seed=sidecar_seed(settings.input_prefix)) as stack,
    ):
        stack.start_pollers(pollers, on_batch=report_errors)
        provider = Settings.from_env().reframe_provider  # the stack's default applies now
        print(
            f"moto (S3 + SQS) at {stack.url} (pid {stack.moto.pid}), bucket {stack.wiring.bucket}, provider {provider}",
            file=out,
        )
        print(f"uploading {len(sources)} images with their sidecars...", file=out, flush=True)
        for key, path in sources.items():
            stack.s3.put_object(Bucket=stack.wiring.bucket, Key=key, Body=path.read_bytes())

        def finished() -> bool:
            present = _keys(stack, settings.output_prefix)
            return all(key in present for key in manifest_keys.values()) and stack.pending() == 0

        complete = wait_until(finished, timeout_s)
        manifests = {key: _download_results(stack, manifest, output) for key, manifest in manifest_keys.items()}
        dead = stack.dead_letters()
        notices = stack.notices()  # every batch is done: each announced its outcome during the batch

    (output / "notices.jsonl").write_text("".join(json.dumps(notice) + "\n" for notice in notices))
    sheet = output / "contact-sheet.png"
    contact_sheet(_rows(sources, manifests, output, settings.input_prefix)).save(sheet)
    print(_table(manifests, settings.input_prefix), file=out)
    ok = complete and dead == 0 and all(_statuses(m) <= set(_DONE) for m in manifests.values() if m)
    if not complete:
        print(f"timed out after {timeout_s:.0f} s waiting for the manifests", file=out)
    if dead:
        print(f"{dead} event(s) went to the dead-letter queue", file=out)
    page = output / "gallery.html"  # the review gallery over the files just downloaded, beside them
    found = [m for m in manifests.values() if m]
    page.write_text(
        gallery.render(
            found,
            quote,
            title="Reframe demo",
            source_url=lambda key: sources[key].resolve().as_uri(),  # the sample image uploaded
            match_min=settings.source_match_min,
        ),
        encoding="utf-8",
    )
    print(f"contact sheet: {sheet}\nhandler logs and metrics: {output / 'logs.jsonl'}", file=out)
    print(f"review gallery: {page} (live, with regenerate: make serve; a deployed bucket: reframe report)", file=out)
    print(f"notices (EventBridge events, one per outcome): {len(notices)} in {output / 'notices.jsonl'}", file=out)
    print(f"{'done' if ok else 'finished with problems'} in {time.monotonic() - clock:.1f} s", file=out)
    return 0 if ok else 1


def _keys(stack: MotoStack, prefix: str) -> set[str]:
    pages = stack.s3.get_paginator("list_objects_v2").paginate(Bucket=stack.wiring.bucket, Prefix=prefix)
    return {item["Key"] for page in pages for item in page.get("Contents", [])}


def _download_results(stack: MotoStack, manifest_key: str, output: Path) -> dict[str, Any] | None:
    """The source's output folder (manifest, variants, a prepared copy), saved under ``output``
    at their bucket keys."""
    if manifest_key not in _keys(stack, manifest_key):
        return None
    bucket = stack.wiring.bucket
    manifest: dict[str, Any] = json.loads(stack.s3.get_object(Bucket=bucket, Key=manifest_key)["Body"].read())
    for key in sorted(_keys(stack, manifest_key.rsplit("/", 1)[0] + "/")):
        target = output / key
        target.parent.mkdir(parents=True, exist_ok=True)
        stack.s3.download_file(bucket, key, str(target))
    return manifest


def _statuses(manifest: dict[str, Any]) -> set[str]:
    return {v["status"] for v in manifest["variants"]}


def _size(variant: dict[str, Any]) -> str:
    return f"{variant['width']}x{variant['height']}" if variant.get("width") else "-"


def _rows(
    sources: dict[str, Path], manifests: dict[str, dict[str, Any] | None], output: Path, input_prefix: str
) -> list[list[Tile]]:
    rows = []
    for key, path in sources.items():
        manifest = manifests[key]
        with_config = f"config: {manifest['config']['from']}" if manifest else "no manifest"
        if manifest and manifest["source"].get("prepared"):
            with_config += ", prepared: " + ", ".join(manifest["source"]["prepared"]["reasons"])
        row = [Tile(path, (key.removeprefix(input_prefix), _image_size(path), with_config))]
        for v in manifest["variants"] if manifest else []:
            image = output / v["key"] if v["key"] and v["status"] in _DONE else None
            flags = [*(v.get("warnings") or []), *(["fallback"] if v.get("fallback_reason") else [])]
            status = f"{v['status']}, flagged: {', '.join(flags)}" if flags else v["status"]
            row.append(Tile(image, (v["name"], _size(v), status), flagged=bool(flags)))
        rows.append(row)
    return rows


def _image_size(path: Path) -> str:
    with Image.open(path) as image:
        return f"{image.width}x{image.height}"


def _table(manifests: dict[str, dict[str, Any] | None], input_prefix: str) -> str:
    lines = [("source", "target", "size", "status", "time ms")]
    for key, manifest in manifests.items():
        source = key.removeprefix(input_prefix)
        if manifest is None:
            lines.append((source, "-", "-", "no manifest", "-"))
            continue
        for v in manifest["variants"]:
            status = v["status"] + (f" ({v['error']['code']})" if v.get("error") else "")
            latency = str(v["latency_ms"]) if v.get("latency_ms") is not None else "-"
            lines.append((source, v["name"], _size(v), status, latency))
    widths = [max(len(line[column]) for line in lines) for column in range(len(lines[0]))]
    return "\n".join(
        "  ".join(
            cell.rjust(w) if column == 4 else cell.ljust(w)
            for column, (cell, w) in enumerate(zip(line, widths, strict=True))
        ).rstrip()
        for line in lines
    )


def planned(settings: Settings) -> str:
    """What the demo uploads and what each upload gets, planned from the example sidecars as the handler
    plans them, with the number of calls and their price: docs/demo.md quotes it (a test keeps it current)."""
    seeded = sidecar_seed(settings.input_prefix)
    rows = []
    speeds: Counter[str] = Counter()
    for key in (settings.input_prefix + key for key in UPLOADS.values()):
        # The first sidecar found wins, as the handler's find_config decides.
        origin, config = next((origin, k) for origin, k in candidate_keys(key, settings.input_prefix) if k in seeded)
        sidecar = parse_sidecar(
            seeded[config], max_bytes=settings.max_sidecar_bytes, max_targets=settings.max_targets_per_object
        )
        variants = plan(
            sidecar,
            provider=_PRICED,
            default_speed=settings.default_rendering_speed,
            style_prefix=settings.style_prefix,
        )
        configured_by = f"its sidecar `{config}`" if origin == "object" else f"the folder default `{config}`"
        payers = generation_payers(variants)  # targets that share a generation pay for it once
        for index, (target, variant) in enumerate(zip(sidecar.targets, variants, strict=True)):
            kind, asked = requested(target)
            first = index == 0
            rows.append(
                [
                    f"`{key}`" if first else "",
                    configured_by if first else "",
                    f"`{variant.name}`",
                    str(variant.final_size),
                    f"{kind} `{asked}`",
                    variant.rendering_speed,
                    variant.output.format,
                ]
            )
            if payers[variant.name] == variant.name:
                speeds[variant.rendering_speed] += 1
    headers = ["upload", "configured by", "variant", "size", "asked as", "speed", "output"]
    cost = sum(n * estimate(settings.price_table, _PRICED, speed) for speed, n in speeds.items())
    by_speed = ", ".join(f"{n} {speed}" for speed, n in sorted(speeds.items()))
    calls = f"{speeds.total()} calls ({by_speed}), about ${cost:.2f} at the `{_PRICED}` prices of the price table"
    return f"{markdown_table(headers, rows)}\n\nWith a paid provider the demo makes {calls}.\n"
