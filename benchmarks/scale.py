"""Figures 7 to 9 (issue 15): function instances as separate processes, each taking SQS batches from the local
stack (S3 -> SQS -> instance -> handler), against one provider limit; with and without the shared limit
(PROVIDER_MAX_IN_FLIGHT), and a burst of uploads."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reframe_local.moto_stack import MotoStack, create_idempotency_table, wait_until
from reframe_local.servers import ServerProcess

from .figures import ROOT, Figure, Sizes, targets_spread
from .stack import configure_emulator, emulator_stats, jpeg, provider_env, sidecar, variant_count

SCALE_LIMIT = 4  # figures 7 and 8: the emulator's calls in flight (429 inflight_limit beyond)
SHARED_GOAL = 0.92  # figure 7: of the calls per second the limit allows
BURST_LIMIT = 10  # figure 9: Ideogram's default in flight per organisation
BURST_TARGETS = 2
MAX_RSS_MB = 250  # figure 4's goal, held by every instance through the burst
TABLE = "bench-idempotency"
MAX_RECEIVES = 5  # the template's maxReceiveCount
RETRY_S = 1  # RETRY_VISIBILITY_S: a handed-back record returns at once; the figures measure the provider's pace
_UPLOADERS = 8  # a burst arrives at once, not one upload after another
_STOP_TIMEOUT_S = 60


@dataclass(frozen=True)
class Run:
    """One run of instances over a batch of uploads."""

    expected: int  # variants asked for
    made: int  # variants in the bucket at the end
    dead: int  # messages in the dead-letter queue
    drained: bool  # the queue emptied before the timeout
    elapsed_s: float  # first upload until the queue is empty
    stats: dict[str, Any]  # the emulator's
    peaks_mb: list[float]  # each instance's peak RSS
    cpu_s: dict[str, float]  # CPU seconds used during the run: moto, the emulator, the instances together
    requests: dict[str, int]  # the instances' DynamoDB requests: all, and those for the shared slots

    @property
    def lost(self) -> int:
        return self.expected - self.made

    def throttled_per_variant(self) -> float:
        return float(self.stats["rejected_429"]) / max(1, self.made)

    def outcome(self) -> str:
        busy = ", ".join(f"{name} {seconds:.0f}" for name, seconds in self.cpu_s.items())
        per_variant = {name: count / max(1, self.made) for name, count in self.requests.items()}
        return (
            f"DynamoDB requests per variant {per_variant['dynamodb']:.1f}, of which for the shared slots "
            f"{per_variant['slot_requests']:.1f}; lost variants {self.lost}, dead letters {self.dead}, "
            f"429s per variant {self.throttled_per_variant():.2f} "
            f"({self.stats['rejected_429']}), most calls in flight {self.stats['max_in_flight_seen']}, "
            f"billed {self.stats['billed']} for {self.expected} variants; CPU seconds used, of the {os.cpu_count()} x "
            f"{self.elapsed_s:.0f} the cores had: {busy}"
        )


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a running process (Linux ``/proc``; 0 elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime


@contextmanager
def instances(stack: MotoStack, env: dict[str, str], count: int, log_dir: Path) -> Iterator[list[dict[str, float]]]:
    """``count`` instance processes polling the stack's queue; on the way out they are stopped (SIGTERM, by
    pid) and the list yielded receives what each that ended cleanly reported (``benchmarks/instance.py``)."""
    wiring = stack.wiring
    argv = [sys.executable, "-m", "benchmarks.instance", stack.url, wiring.queue_url, wiring.queue_arn, str(RETRY_S)]
    processes: list[subprocess.Popen[str]] = []
    usage: list[dict[str, float]] = []
    try:
        for index in range(count):
            with (log_dir / f"instance-{index}.log").open("w") as log:
                processes.append(
                    subprocess.Popen(argv, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=log, text=True)  # noqa: S603
                )
        for index, process in enumerate(processes):
            assert process.stdout is not None
            if process.stdout.readline().strip() != "ready":
                raise RuntimeError(f"instance {index} did not start; see {log_dir / f'instance-{index}.log'}")
        yield usage
    finally:
        for process in processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in processes:
            try:
                out, _ = process.communicate(timeout=_STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                process.kill()
                process.communicate()
                continue
            if process.returncode == 0:
                usage.append(json.loads(out.splitlines()[-1]))


def run_instances(
    emulator: ServerProcess,
    log_dir: Path,
    *,
    name: str,
    sources: int,
    targets: list[str],
    count: int,
    limit: int,
    latency_s: float,
    shared: bool,
) -> Run:
    """``sources`` uploads at once into a fresh stack, handled by ``count`` instances against an emulator that
    allows ``limit`` calls in flight at ``latency_s`` each; the instances share that limit when ``shared``."""
    configure_emulator(emulator, latency_ms=int(latency_s * 1000), max_in_flight=limit, render="fast")
    folder = f"uploads/{name}/"
    run_dir = log_dir / name
    run_dir.mkdir(parents=True, exist_ok=True)
    seed = {folder + "_reframe.json": sidecar(targets)}
    with MotoStack.start(
        run_dir, bucket=f"bench-{name}", seed=seed, retry_delay_s=RETRY_S, max_receives=MAX_RECEIVES
    ) as stack:
        create_idempotency_table(stack.moto.client("dynamodb"), TABLE)
        env = {
            **{k: v for k, v in os.environ.items() if k != "PROVIDER_MAX_IN_FLIGHT"},
            **provider_env(emulator),
            "IDEMPOTENCY_TABLE": TABLE,
            # Synchronous calls: the emulator's limit then covers each generation, as Ideogram's does.
            "SEGMIND_API_MODE": "sync",
            "RETRY_VISIBILITY_S": str(RETRY_S),
            **({"PROVIDER_MAX_IN_FLIGHT": str(limit)} if shared else {}),
        }
        bucket = stack.wiring.bucket
        expected = sources * len(targets)
        emulator_cpu_s = cpu_seconds(emulator.pid)
        with instances(stack, env, count, run_dir) as usage:
            started = time.perf_counter()

            def upload(index: int) -> None:
                stack.s3.put_object(Bucket=bucket, Key=f"{folder}{index:04d}.jpg", Body=jpeg(320 + index % 64, 200))

            with ThreadPoolExecutor(_UPLOADERS) as uploads:
                list(uploads.map(upload, range(sources)))
            # Every upload's event is in the queue now: empty means each was handled or dead-lettered.
            drained = wait_until(lambda: stack.pending() == 0, timeout_s=60 + 4 * expected * latency_s / limit)
            elapsed = time.perf_counter() - started
            busy = {"moto": cpu_seconds(stack.moto.pid), "emulator": cpu_seconds(emulator.pid) - emulator_cpu_s}
        made = variant_count(stack.s3, bucket, f"reframed/{name}/")
        dead = stack.dead_letters()
    busy["instances"] = sum(report["cpu_s"] for report in usage)
    requests = {name: int(sum(report[name] for report in usage)) for name in ("dynamodb", "slot_requests")}
    peaks = [report["rss_mb"] for report in usage]
    return Run(expected, made, dead, drained, elapsed, emulator_stats(emulator), peaks, busy, requests)


def _throughput(run: Run, limit: int, latency_s: float) -> tuple[float, str]:
    ideal = limit / latency_s
    rate = run.stats["billed"] / run.elapsed_s
    return (
        rate / ideal,
        f"{rate / ideal:.0%} of {ideal:.1f} calls/s ({run.stats['billed']} calls in {run.elapsed_s:.1f} s)",
    )


def shared_limit(emulator: ServerProcess, sizes: Sizes, log_dir: Path) -> list[Figure]:
    """Figure 7 with PROVIDER_MAX_IN_FLIGHT set to the provider's limit, figure 8 the same run without it."""
    targets = targets_spread(sizes.source_targets)
    figures = []
    for number, shared in ((7, True), (8, False)):
        run = run_instances(
            emulator,
            log_dir,
            name="shared" if shared else "unshared",
            sources=sizes.scale_sources,
            targets=targets,
            count=sizes.instances,
            limit=SCALE_LIMIT,
            latency_s=sizes.latency_s,
            shared=shared,
        )
        share, measured = _throughput(run, SCALE_LIMIT, sizes.latency_s)
        met = run.drained and share >= SHARED_GOAL and run.lost == 0 and run.dead == 0
        figures.append(
            Figure(
                number,
                f"{sizes.instances} instances, a provider limit of {SCALE_LIMIT} in flight, "
                f"{'with' if shared else 'without'} PROVIDER_MAX_IN_FLIGHT: {sizes.scale_sources} sources x "
                f"{len(targets)} targets",
                f"{measured}; {run.throttled_per_variant():.2f} 429s per variant; lost {run.lost}, "
                f"dead letters {run.dead}",
                f">= {SHARED_GOAL:.0%}, 0 lost, 0 dead letters" if shared else "none: the comparison for figure 7",
                met if shared else None,
                f"S3 -> SQS -> {sizes.instances} instance processes -> handler; {run.outcome()}"
                + ("" if run.drained else "; the queue did not empty before the timeout"),
            )
        )
    return figures


def burst(emulator: ServerProcess, sizes: Sizes, log_dir: Path) -> Figure:
    """Figure 9: a burst of uploads with a fast provider, the instances sharing its limit."""
    run = run_instances(
        emulator,
        log_dir,
        name="burst",
        sources=sizes.burst_sources,
        targets=targets_spread(BURST_TARGETS),
        count=sizes.instances,
        limit=BURST_LIMIT,
        latency_s=sizes.burst_latency_s,
        shared=True,
    )
    ideal_s = run.expected / BURST_LIMIT * sizes.burst_latency_s
    ratio = run.elapsed_s / ideal_s
    peak = max(run.peaks_mb, default=0.0)
    complete = run.drained and run.lost == 0 and run.dead == 0 and len(run.peaks_mb) == sizes.instances
    return Figure(
        9,
        f"Burst: {sizes.burst_sources} uploads x {BURST_TARGETS} targets, {sizes.instances} instances, a limit of "
        f"{BURST_LIMIT} in flight at {sizes.burst_latency_s * 1000:.0f} ms",
        f"{ratio:.2f}x the ideal ({run.elapsed_s:.1f} s vs {ideal_s:.1f} s); lost {run.lost}, queue "
        f"{'empty' if run.drained else 'not empty'}; peak RSS per instance {peak:.0f} MB",
        f"<= 3x the ideal, every variant, queue empty, <= {MAX_RSS_MB} MB per instance",
        complete and ratio <= 3 and peak <= MAX_RSS_MB,
        f"ideal = {run.expected} calls / {BURST_LIMIT} in flight x {sizes.burst_latency_s * 1000:.0f} ms; "
        f"{run.outcome()}; peak RSS of each instance (MB): {', '.join(f'{mb:.0f}' for mb in sorted(run.peaks_mb))}",
    )
