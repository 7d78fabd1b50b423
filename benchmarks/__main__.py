"""``python -m benchmarks [--smoke] [--output PATH]``: measure the figures, print them, write the report."""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from . import defaults, delivery, features, figures, scale
from .cold_start import cold_start
from .figures import FULL, SMOKE, Figure, Sizes
from .report import REPORT, render, verdict, write_section
from .stack import point_handler, running


def measure(sizes: Sizes, log_dir: Path) -> list[Figure]:
    results = [figures.engine(sizes), defaults.source_check_cpu(sizes)]
    with running(log_dir) as (moto, emulator):
        bench = point_handler(moto, emulator)
        results.append(cold_start(bench, sizes, log_dir))  # first: nothing else running yet
        figures.warm_up(bench, sizes)
        results += [figures.fan_out(bench, sizes), figures.overhead(bench, sizes), figures.memory(bench, sizes)]
        results.append(defaults.defaults(bench, sizes))
        results.append(figures.throughput(emulator, sizes, log_dir))
        results += [*scale.shared_limit(emulator, sizes, log_dir), scale.burst(emulator, sizes, log_dir)]
    return sorted(results, key=lambda figure: figure.number)


def machine() -> str:
    model = next(
        (line.split(":", 1)[1].strip() for line in _lines("/proc/cpuinfo") if line.startswith("model name")),
        platform.processor() or "unknown",
    )
    memory_kb = next((int(line.split()[1]) for line in _lines("/proc/meminfo") if line.startswith("MemTotal")), 0)
    return (
        f"{os.cpu_count()} cores, {memory_kb / 1024**2:.0f} GiB, {model}, "
        f"Python {platform.python_version()} on {platform.system()}"
    )


def load_average() -> float:
    """The last minute's: the cores may be shared with other work, which the figures then include."""
    return os.getloadavg()[0]


def _lines(path: str) -> list[str]:
    try:
        return Path(path).read_text().splitlines()
    except OSError:
        return []


def kept_section(report: Path) -> str:
    """The section ``python -m benchmarks.features`` wrote into the page, kept: its own run rewrites it."""
    text = report.read_text() if report.exists() else ""
    if features.START not in text:
        return ""
    return "\n" + features.START + text.split(features.START, 1)[1].split(features.END, 1)[0] + features.END + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: checks the harness, not the speed")
    parser.add_argument(
        "--burst",
        type=int,
        help=f"uploads in figure 9's burst (default {FULL.burst_sources}; {SMOKE.burst_sources} with --smoke)",
    )
    parser.add_argument("--output", type=Path, help=f"report to write (default {REPORT}; none with --smoke)")
    args = parser.parse_args(argv)
    sizes = SMOKE if args.smoke else FULL
    if args.burst is not None:
        sizes = dataclasses.replace(sizes, burst_sources=args.burst)
    started, load = time.monotonic(), load_average()
    with tempfile.TemporaryDirectory(prefix="reframe-bench-") as logs:
        results = measure(sizes, Path(logs))
    minutes = max(1, round((time.monotonic() - started) / 60))
    for figure in results:
        print(f"{figure.number}. {figure.name}: {figure.measured} (goal {figure.goal}: {verdict(figure)})")
    output = args.output or (None if args.smoke else REPORT)
    if output is not None:
        where = f"{machine()}; load average {load:.1f} at the start, {load_average():.1f} at the end"
        page = render(results, where, datetime.now(UTC), smoke=args.smoke, minutes=minutes)
        output.write_text(page + kept_section(output))
        write_section(delivery.run(), (delivery.START, delivery.END), output)  # in-process: no server, no emulator
        print(f"written to {output}")
    return 0


raise SystemExit(main())
