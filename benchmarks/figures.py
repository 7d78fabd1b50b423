"""Figures 1, 2 and 4 to 6 (3 is in cold_start.py, 7 to 9 in scale.py). Each returns a Figure: what was
measured, against which goal, and the details."""

from __future__ import annotations

import io
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from unittest import mock

from PIL import Image

from reframe_cli.logs import handler_output_to
from reframe_cli.samples import IMAGES
from reframe_local.moto_stack import MotoStack, wait_until
from reframe_local.servers import ServerProcess
from reframe_pipeline.domain.local_engine import extend_canvas
from reframe_pipeline.domain.resolutions import RESOLUTIONS, Size

from .stack import Bench, configure_emulator, emulator_stats, invoke, jpeg, sidecar, variant_count

SAMPLE = IMAGES / "rocket.jpg"
ENGINE_SAMPLE = IMAGES / "coffee.png"  # 600x400
ISSUE3_SIZE = Size(1536, 640)
CALL_LIMIT = 4  # figure 5: the emulator's max_in_flight
ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Sizes:
    latency_s: float
    fanout_targets: int
    fanout_runs: int
    overhead_runs: int
    cold_runs: int
    memory_sides: tuple[int, int]  # the large source first
    memory_targets: int
    sources: int
    source_targets: int
    pollers: int
    engine_resolutions: int
    instances: int  # figures 7 to 9: function instances, each a process
    scale_sources: int  # figures 7 and 8, with source_targets each
    burst_sources: int  # figure 9 (python -m benchmarks --burst N)
    burst_latency_s: float


FULL = Sizes(1.0, 8, 3, 20, 10, (4096, 1024), 8, 40, 3, 3, len(RESOLUTIONS), 6, 48, 1000, 0.5)
SMOKE = Sizes(0.1, 2, 1, 2, 2, (256, 128), 2, 3, 1, 2, 3, 2, 4, 6, 0.05)


@dataclass(frozen=True)
class Figure:
    number: int
    name: str
    measured: str
    goal: str
    met: bool | None  # None: no goal
    details: str


def targets_spread(count: int) -> list[str]:
    """``count`` different resolutions spread over the catalogue."""
    step = len(RESOLUTIONS) // count
    return [str(size) for size in RESOLUTIONS[::step][:count]]


def _timed_invocation(bench: Bench, key: str, targets: list[str]) -> float:
    source = bench.upload(key, SAMPLE.read_bytes(), targets)
    started = time.perf_counter()
    invoke(source)
    return time.perf_counter() - started


def warm_up(bench: Bench, sizes: Sizes) -> None:
    """One invocation first, as a warm container has made: clients built, connections open."""
    configure_emulator(bench.emulator, latency_ms=0, render="fast")
    _timed_invocation(bench, "uploads/warm/first.jpg", targets_spread(sizes.fanout_targets))


def fan_out(bench: Bench, sizes: Sizes) -> Figure:
    configure_emulator(bench.emulator, latency_ms=int(sizes.latency_s * 1000), render="fast")
    targets = targets_spread(sizes.fanout_targets)
    walls = [_timed_invocation(bench, f"uploads/fanout/{run}.jpg", targets) for run in range(sizes.fanout_runs)]
    wall = statistics.median(walls)
    ratio = wall / sizes.latency_s
    return Figure(
        1,
        f"Fan-out: 1 source x {len(targets)} targets, wall / call latency",
        f"{ratio:.2f} ({wall * 1000:.0f} ms)",
        "<= 1.15",
        ratio <= 1.15,
        f"median of {len(walls)} invocations; call latency {sizes.latency_s * 1000:.0f} ms; "
        f"a sequential pipeline scores {len(targets)}",
    )


def overhead(bench: Bench, sizes: Sizes) -> Figure:
    configure_emulator(bench.emulator, latency_ms=int(sizes.latency_s * 1000), render="fast")
    target = targets_spread(1)
    walls = [_timed_invocation(bench, f"uploads/overhead/{run}.jpg", target) for run in range(sizes.overhead_runs)]
    extra_ms = (statistics.median(walls) - sizes.latency_s) * 1000
    # Only a synchronous call lasts the whole generation; an async request answers at once, its job runs apart.
    calls = emulator_stats(bench.emulator)["calls"]
    served_ms = [call["duration_ms"] - sizes.latency_s * 1000 for call in calls if call["endpoint"] == "segmind"]
    served = f"{statistics.median(served_ms):.0f} ms" if served_ms else "not seen: the calls went to the async API"
    return Figure(
        2,
        "Overhead per variant: wall - call latency, 1 target",
        f"{extra_ms:.0f} ms",
        "<= 50 ms",
        extra_ms <= 50,
        f"median of {len(walls)}; min {(min(walls) - sizes.latency_s) * 1000:.0f} ms, "
        f"max {(max(walls) - sizes.latency_s) * 1000:.0f} ms; of which the emulator's own time beyond the latency "
        f"{served}",
    )


def memory(bench: Bench, sizes: Sizes) -> Figure:
    configure_emulator(bench.emulator, latency_ms=0, render="fast")
    targets = targets_spread(sizes.memory_targets)
    peaks: dict[int, float] = {}
    for side in sizes.memory_sides:
        source = bench.upload(f"uploads/memory/{side}.jpg", jpeg(side, side), targets)
        run = subprocess.run(  # noqa: S603
            [sys.executable, "-m", "benchmarks.memory_child", source.key, source.etag, str(source.size)],
            check=True,
            capture_output=True,
            text=True,
            cwd=ROOT,
        )
        peaks[side] = float(run.stdout.strip().splitlines()[-1])
    large, small = sizes.memory_sides
    seen = emulator_stats(bench.emulator)["largest_source_pixels"]
    return Figure(
        4,
        f"Memory: peak RSS, {large}x{large} JPEG source, {len(targets)} targets",
        f"{peaks[large]:.0f} MB ({small}x{small}: {peaks[small]:.0f} MB)",
        "<= 250 MB, flat in source size",
        peaks[large] <= 250 and abs(peaks[large] - peaks[small]) <= 0.1 * peaks[small],
        f"fresh process per source, its VmHWM; the emulator fetched sources of up to {seen} pixels "
        "by URL; the function read only their headers",
    )


def throughput(emulator: ServerProcess, sizes: Sizes, log_dir: Path) -> Figure:
    configure_emulator(emulator, latency_ms=int(sizes.latency_s * 1000), max_in_flight=CALL_LIMIT, render="fast")
    targets = targets_spread(sizes.source_targets)
    expected = sizes.sources * len(targets)
    folder = "uploads/throughput/"
    seed = {folder + "_reframe.json": sidecar(targets)}
    # Synchronous calls: the emulator's limit then covers each generation, as Ideogram's does (with the async
    # API it would cover only the requests, and the jobs behind them would run unlimited).
    # The pollers' handler logs and metrics are kept off the terminal.
    with (
        mock.patch.dict(os.environ, SEGMIND_API_MODE="sync"),
        handler_output_to(io.StringIO()),
        MotoStack.start(log_dir, bucket="bench-throughput", seed=seed) as stack,
    ):
        stack.start_pollers(sizes.pollers)
        bucket = stack.wiring.bucket

        def variants() -> int:
            return variant_count(stack.s3, bucket, "reframed/throughput/")

        started = time.perf_counter()
        for index in range(sizes.sources):
            stack.s3.put_object(Bucket=bucket, Key=f"{folder}{index:03d}.jpg", Body=jpeg(320 + index, 200))
        done = wait_until(lambda: variants() >= expected and stack.pending() == 0, timeout_s=expected * 5)
        elapsed = time.perf_counter() - started
        made, dead = variants(), stack.dead_letters()
    stats = emulator_stats(emulator)
    rate = stats["billed"] / elapsed
    ideal = CALL_LIMIT / sizes.latency_s
    lost = expected - made
    return Figure(
        5,
        f"Throughput under a limit of {CALL_LIMIT} calls in flight: {sizes.sources} sources x {len(targets)} targets",
        f"{rate / ideal:.0%} of {ideal:.1f} calls/s ({stats['billed']} calls in {elapsed:.1f} s)",
        ">= 90 %, 0 lost",
        done and rate >= 0.9 * ideal and lost == 0 and dead == 0,
        f"S3 -> SQS -> {sizes.pollers} pollers -> handler; lost variants {lost}, dead letters {dead}, "
        f"429s taken {stats['rejected_429']}, most calls in flight {stats['max_in_flight_seen']}, "
        f"billed {stats['billed']} for {expected} variants",
    )


def engine(sizes: Sizes) -> Figure:
    with Image.open(ENGINE_SAMPLE) as opened:
        source = opened.convert("RGB")
    catalogue = RESOLUTIONS[: sizes.engine_resolutions]
    timed_ms: dict[Size, float] = {}
    # 1536x640 is one of the resolutions: timed once, counted in the median too.
    for size in dict.fromkeys([*catalogue, ISSUE3_SIZE]):
        runs = []
        for _ in range(3):
            started = time.perf_counter()
            extend_canvas(source, size)
            runs.append((time.perf_counter() - started) * 1000)
        timed_ms[size] = statistics.median(runs)
    issue3_ms = timed_ms[ISSUE3_SIZE]
    per_mp = [timed_ms[size] / (size.width * size.height / 1e6) for size in catalogue]
    return Figure(
        6,
        f"Local engine: extend_canvas from {source.width}x{source.height}",
        f"{statistics.median(per_mp):.1f} ms/MP; 1536x640: {issue3_ms:.1f} ms",
        "1536x640 well under 100 ms",
        issue3_ms < 100,
        f"median over {len(per_mp)} resolutions (each the median of 3 runs); "
        f"range {min(per_mp):.1f}-{max(per_mp):.1f} ms/MP",
    )
