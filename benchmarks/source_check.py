"""The source check's figures (docs/source-check.md): over the sample images and three resolutions, the
emulator's pictures as they are ("ok"), with the source moved ("offset", "scaled") and with its middle
repainted ("repaint"), encoded as JPEG (as Segmind answers): the CPU time per generation, how far the found box
is from the true one, the scores, and how many fall under SOURCE_MATCH_MIN.

    .venv/bin/python -m benchmarks.source_check [--format png]

``per_variant_ms`` is benchmark figure 10 (``python -m benchmarks``): the CPU time per 1536x640 generation.
"""

from __future__ import annotations

import argparse
import io
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

from reframe_local.emulator.api import placed_box, render
from reframe_pipeline.application.source_image import SourceImage
from reframe_pipeline.application.source_matching import look_for_source
from reframe_pipeline.domain.resolutions import Size
from reframe_pipeline.settings import Settings

IMAGES = Path(__file__).resolve().parents[1] / "examples" / "images"
SAMPLES = ["astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg"]
RESOLUTIONS = [Size(1536, 640), Size(640, 1536), Size(1024, 1024)]
MODES = ["ok", "offset", "scaled", "repaint"]
FIGURE_SIZE = Size(1536, 640)


@dataclass
class Checks:
    """Per mode: CPU ms (the process's: what one core spends, whatever else the machine runs), scores, box errors."""

    cpu: dict[tuple[str, Size], list[float]] = field(default_factory=dict)
    scores: dict[str, list[float]] = field(default_factory=dict)
    errors: dict[str, list[int]] = field(default_factory=dict)


def run(fmt: str = "JPEG", samples: list[str] = SAMPLES, resolutions: list[Size] = RESOLUTIONS) -> Checks:
    checks = Checks()
    for name in samples:
        raw = (IMAGES / name).read_bytes()
        with Image.open(io.BytesIO(raw)) as opened:
            source = opened.convert("RGB")
        image = SourceImage("unused", lambda raw=raw: raw)  # type: ignore[misc]
        image.thumbnail()  # made once per source: not part of a generation's check
        for size in resolutions:
            for mode in MODES:
                out = io.BytesIO()
                render(source, size, "reframe", mode).save(out, fmt)
                started = time.process_time()
                found = look_for_source(image, out.getvalue())
                checks.cpu.setdefault((mode, size), []).append((time.process_time() - started) * 1000)
                checks.scores.setdefault(mode, []).append(found.score)
                expected = placed_box(Size(*source.size), size, None if mode in ("ok", "repaint") else mode)
                box = (found.box.x, found.box.y, found.box.width, found.box.height)
                checks.errors.setdefault(mode, []).append(max(abs(a - b) for a, b in zip(box, expected, strict=True)))
    return checks


def per_variant_ms(checks: Checks, modes: list[str], size: Size = FIGURE_SIZE) -> list[float]:
    return [ms for mode in modes for ms in checks.cpu.get((mode, size), [])]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.source_check", description=__doc__)
    parser.add_argument("--format", default="jpeg", choices=["jpeg", "png", "webp"], help="the results' encoding")
    args = parser.parse_args(argv)
    minimum = Settings.from_env({}).source_match_min
    checks = run(args.format.upper())
    everything = [ms for runs in checks.cpu.values() for ms in runs]
    median = statistics.median(everything)
    print(f"{args.format}, CPU per generation: median {median:.1f} ms, max {max(everything):.0f} ms")
    for label, modes in (("intact", ["ok"]), ("every mode", MODES)):
        runs = per_variant_ms(checks, modes)
        median = statistics.median(runs)
        print(f"  {FIGURE_SIZE}, {label}: median {median:.1f} ms, max {max(runs):.1f} ms, n={len(runs)}")
    for mode in MODES:
        scores = checks.scores[mode]
        flagged = sum(score < minimum for score in scores)
        print(
            f"{mode:8} score {min(scores):.3f}..{max(scores):.3f}  flagged {flagged}/{len(scores)}"
            f"  box off by at most {max(checks.errors[mode])} px"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
