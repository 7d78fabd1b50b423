"""The source check's figures (docs/source-check.md): over the sample images and three resolutions, the
emulator's pictures as they are ("ok"), with the source moved ("offset", "scaled") and with its middle
repainted ("repaint"): the time per generation, how far the found box is from the true one, the scores, and
how many repaints fall under SOURCE_MATCH_MIN.

    .venv/bin/python -m benchmarks.source_check
"""

from __future__ import annotations

import io
import statistics
import time
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


def main() -> None:
    minimum = Settings.from_env({}).source_match_min
    times: list[float] = []
    cpu: list[float] = []  # the process's CPU time: what one core spends, whatever else the machine runs
    scores: dict[str, list[float]] = {mode: [] for mode in MODES}
    errors: dict[str, list[int]] = {mode: [] for mode in MODES}
    for name in SAMPLES:
        raw = (IMAGES / name).read_bytes()
        with Image.open(io.BytesIO(raw)) as opened:
            source = opened.copy()
        for size in RESOLUTIONS:
            for mode in MODES:
                picture = render(source, size, "reframe", mode)
                out = io.BytesIO()
                picture.save(out, "PNG")
                image = SourceImage("unused", lambda raw=raw: raw)  # type: ignore[misc]
                image.thumbnail()  # made once per source and run: not part of a generation's check
                started, started_cpu = time.perf_counter(), time.process_time()
                found = look_for_source(image, out.getvalue())
                times.append((time.perf_counter() - started) * 1000)
                cpu.append((time.process_time() - started_cpu) * 1000)
                scores[mode].append(found.score)
                expected = placed_box(Size(*source.size), size, None if mode in ("ok", "repaint") else mode)
                box = found.box
                errors[mode].append(
                    max(abs(a - b) for a, b in zip((box.x, box.y, box.width, box.height), expected, strict=True))
                )
    print(
        f"time per generation: wall median {statistics.median(times):.0f} ms, max {max(times):.0f} ms;"
        f" CPU median {statistics.median(cpu):.0f} ms, max {max(cpu):.0f} ms; n={len(times)}"
    )
    for mode in MODES:
        flagged = sum(score < minimum for score in scores[mode])
        print(
            f"{mode:8} score {min(scores[mode]):.3f}..{max(scores[mode]):.3f}  flagged {flagged}/{len(scores[mode])}"
            f"  box off by at most {max(errors[mode])} px"
        )


if __name__ == "__main__":
    main()
