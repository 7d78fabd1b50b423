"""Delivery figure (docs/benchmarks.md, "Delivery"): bytes and CPU milliseconds per megapixel of each deliverable
format, before and after the lossless optimizers (JPEG through mozjpeg's, PNG through oxipng), as the pipeline
encodes them; WebP and AVIF at the effort it uses. The sample photos, each cropped to three generation sizes.

    .venv/bin/python -m benchmarks.delivery [--output docs/benchmarks.md]

``python -m benchmarks`` measures it too and writes its section into the page."""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from PIL import Image, ImageOps

from reframe_pipeline.adapters.optimizers import OXIPNG_LEVEL, optimize
from reframe_pipeline.domain.imaging import AVIF_SPEED, WEBP_METHOD, encode
from reframe_pipeline.domain.resolutions import Size

from .report import REPORT, write_section

IMAGES = Path(__file__).resolve().parents[1] / "examples" / "images"
SAMPLES = ["astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg"]
SIZES = [Size(1344, 704), Size(736, 1312), Size(1024, 1024)]
FORMATS = ["jpeg", "png", "webp", "avif"]
QUALITY = 90  # the sidecar's default
START, END = "<!-- delivery:start -->", "<!-- delivery:end -->"
HEADER = (
    "| format | encoder | KiB/MP before | KiB/MP after | bytes ratio | CPU ms/MP before | CPU ms/MP after"
    " | CPU ratio | ms added per variant (median) |"
)


@dataclass
class Tally:
    """Sums over every picture of one format: megapixels, bytes and CPU ms before and after optimizing."""

    megapixels: float = 0.0
    bytes_before: int = 0
    bytes_after: int = 0
    ms_before: float = 0.0
    ms_after: float = 0.0
    added_ms: list[float] | None = None  # per variant


def _cpu_ms(work: Callable[[], bytes]) -> tuple[bytes, float]:
    """The result and the process's CPU time it took (every thread: oxipng's too)."""
    started = time.process_time()
    result = work()
    return result, (time.process_time() - started) * 1000


def pictures() -> list[Image.Image]:
    photos = []
    for name in SAMPLES:
        with Image.open(IMAGES / name) as opened:
            photo = opened.convert("RGB")
        photos += [ImageOps.fit(photo, size, Image.Resampling.LANCZOS) for size in SIZES]
    return photos


def measure(photos: list[Image.Image]) -> dict[str, Tally]:
    tallies = {fmt: Tally(added_ms=[]) for fmt in FORMATS}
    for picture in photos:
        for fmt in FORMATS:
            tally = tallies[fmt]
            body, encode_ms = _cpu_ms(partial(encode, picture, fmt, QUALITY))
            smaller, optimize_ms = _cpu_ms(partial(optimize, body, fmt))
            tally.megapixels += picture.width * picture.height / 1e6
            tally.bytes_before += len(body)
            tally.bytes_after += len(smaller)
            tally.ms_before += encode_ms
            tally.ms_after += encode_ms + optimize_ms
            assert tally.added_ms is not None
            tally.added_ms.append(optimize_ms)
    return tallies


def section(tallies: dict[str, Tally], count: int) -> str:
    effort = {
        "jpeg": f"quality {QUALITY}, then mozjpeg (lossless)",
        "png": f"compress level 6, then oxipng level {OXIPNG_LEVEL} (lossless)",
        "webp": f"quality {QUALITY}, method {WEBP_METHOD}",
        "avif": f"quality {QUALITY}, speed {AVIF_SPEED}",
    }
    rows = []
    for fmt, t in tallies.items():
        mp = t.megapixels
        added = statistics.median(t.added_ms or [0.0])
        rows.append(
            f"| {fmt} | {effort[fmt]} | {t.bytes_before / mp / 1024:,.0f} | {t.bytes_after / mp / 1024:,.0f} |"
            f" {t.bytes_after / t.bytes_before:.3f} | {t.ms_before / mp:,.0f} | {t.ms_after / mp:,.0f} |"
            f" {t.ms_after / t.ms_before:.2f} | {added:,.0f} |"
        )
    return f"""{START}
## Delivery: bytes and CPU per megapixel, before and after the optimizers

`python -m benchmarks.delivery`: the {len(SAMPLES)} sample photos, each cropped to {", ".join(map(str, SIZES))}
({count} pictures), encoded as the pipeline encodes each format, then optimized. CPU time of the process (every
thread), so other work on the machine does not count. "before": Pillow's encoder alone; "after": with the
lossless optimizer (pixels unchanged; WebP and AVIF have none, so their ratios are 1). Ratios are after/before.

{HEADER}
| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |
{chr(10).join(rows)}
{END}
"""


def run() -> str:
    photos = pictures()
    return section(measure(photos), len(photos))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.delivery", description=__doc__)
    parser.add_argument("--output", type=Path, help=f"page whose section to write (default: print only; {REPORT})")
    args = parser.parse_args(argv)
    text = run()
    print(text)
    if args.output:
        write_section(text, (START, END), args.output)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
