"""How long the review gallery takes for many sources: ``python -m benchmarks.gallery [--sources 200]``.

moto with N sources (each a small PNG with three variants, small PNGs, and a manifest) under the output prefix; then:
the static report (list, read every manifest, presign, render), the served page (the same plus the
state token), the page's size, and, where Debian's chromium and Playwright are installed, the time the
served page takes in headless Chromium until its load event and until every image in view has loaded.
Prints the figures; asserts nothing about time.
"""

from __future__ import annotations

import argparse
import io
import json
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from PIL import Image

from reframe_cli import gallery_server, report
from reframe_local import servers
from reframe_pipeline.settings import Settings

BUCKET = "reframe-bench"
VARIANTS = (("1312x736", 1312, 736), ("instagram-story", 1080, 1920), ("thumb", 64, 64))


def _png(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width // 8, height // 8), (40, 80, 160)).save(buffer, "PNG")
    return buffer.getvalue()


def populate(s3: Any, sources: int) -> None:
    s3.create_bucket(Bucket=BUCKET)
    bodies = {name: _png(w, h) for name, w, h in VARIANTS}
    source = _png(1024, 1024)  # the page shows each source beside its variants
    for index in range(sources):
        key = f"uploads/shoot/photo-{index:04d}.jpg"
        out = f"reframed/shoot/photo-{index:04d}.jpg/"
        s3.put_object(Bucket=BUCKET, Key=key, Body=source)
        variants = []
        for name, width, height in VARIANTS:
            s3.put_object(Bucket=BUCKET, Key=f"{out}{name}.png", Body=bodies[name])
            failed = name == "thumb" and index % 10 == 0
            variants.append(
                {
                    "name": name,
                    "key": None if failed else f"{out}{name}.png",
                    "status": "failed" if failed else "created",
                    "width": width,
                    "height": height,
                    "provider": "segmind",
                    "seed": 1000 + index,
                    "cost_usd": 0.0 if failed else 0.075,
                    "error": {"code": "http_500", "message": "down"} if failed else None,
                }
            )
        manifest = {
            "source": {"bucket": BUCKET, "key": key, "etag": "e"},
            "config": {"from": "folder", "key": "uploads/shoot/_reframe.json"},
            "variants": variants,
            "error": None,
            "generated_at": "2026-11-25T03:00:00+00:00",
        }
        s3.put_object(Bucket=BUCKET, Key=out + "manifest.json", Body=json.dumps(manifest).encode())


def _timed(label: str, runs: int, action: Any) -> Any:
    times, result = [], None
    for _ in range(runs):
        start = time.perf_counter()
        result = action()
        times.append(time.perf_counter() - start)
    print(f"{label}: median {sorted(times)[len(times) // 2]:.2f} s, best {min(times):.2f} s ({runs} runs)")
    return result


def browser(url: str, runs: int) -> None:
    chromium = shutil.which("chromium")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        chromium = None
    if chromium is None:
        print("browser: skipped (needs Debian's chromium and the playwright package)")
        return
    with sync_playwright() as playwright:
        engine = playwright.chromium.launch(executable_path=chromium, headless=True)
        try:
            for run in range(runs):
                page = engine.new_page(viewport={"width": 1280, "height": 900})
                start = time.perf_counter()
                page.goto(url, wait_until="load")
                loaded = time.perf_counter() - start
                page.wait_for_function(
                    "[...document.images].filter(i => i.getBoundingClientRect().top < innerHeight)"
                    ".every(i => i.complete && i.naturalWidth > 0)"
                )
                in_view = time.perf_counter() - start
                timing = page.evaluate("JSON.stringify(performance.getEntriesByType('navigation')[0].toJSON())")
                nav = json.loads(timing)
                figures = page.locator("figure.variant").count()
                print(
                    f"browser run {run + 1}: {figures} variants; response {nav['responseEnd']:.0f} ms,"
                    f" DOMContentLoaded {nav['domContentLoadedEventEnd']:.0f} ms, load {loaded * 1000:.0f} ms,"
                    f" images in view {in_view * 1000:.0f} ms"
                )
                page.close()
        finally:
            engine.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sources", type=int, default=200)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    moto = servers.start_moto(log_path=Path(tempfile.mkdtemp(prefix="gallery-bench-")) / "moto.log")
    try:
        s3 = moto.client("s3")
        start = time.perf_counter()
        populate(s3, args.sources)
        took = time.perf_counter() - start
        print(f"{args.sources} sources, {args.sources * len(VARIANTS)} variants written in {took:.1f} s")
        sink = io.StringIO()
        _timed(
            "reframe report (list, read, presign, render)",
            args.runs,
            lambda: report.write(f"s3://{BUCKET}/reframed/", sink, io.StringIO(), expires_s=3600, s3=s3),
        )
        print(f"page size: {len(sink.getvalue()) // args.runs / 1024:.0f} KiB")
        settings = Settings.from_env({"REFRAME_PROVIDER": "local"})
        state = gallery_server.Gallery(s3, BUCKET, settings)
        _timed("served page (the same, plus the state token)", args.runs, lambda: state.page("all"))
        server = gallery_server.start(state)
        try:
            browser(f"http://127.0.0.1:{server.port}/", args.runs)
        finally:
            server.stop()
    finally:
        moto.stop()


if __name__ == "__main__":
    main()
