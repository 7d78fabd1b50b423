"""Figure 3: what a cold start costs the handler, against what any function of its kind pays.

A cold start is counted as imports (clients built) + first event - the same event warm: lazy imports, models
built on first use and the first connections land in the first event, so deferring them cannot hide them.
"""

from __future__ import annotations

import collections
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

from reframe_cli.backfill import notification
from reframe_local.moto_stack import create_idempotency_table
from reframe_local.poller import lambda_event
from reframe_pipeline.domain.events import SIDECAR_SUFFIX

from .figures import ROOT, SAMPLE, Figure, Sizes, targets_spread
from .stack import BUCKET, Bench, configure_emulator

TABLE = "bench-cold"  # deployed, the function has its idempotency table: the cold start builds its client
TARGETS = 2
_QUEUE_ARN = "arn:aws:sqs:us-east-1:123456789012:bench-cold"
_SHOWN = 8  # packages named in the split
FUNCTION_DIR = ROOT / "functions" / "reframe"


def _events_file(bench: Bench, run: str, log_dir: Path, targets: int = TARGETS) -> Path:
    """Two fresh sources alike (none of their variants exists yet), each as an SQS batch of one record."""
    events, keys = [], []
    for index in range(2):
        source = bench.upload(f"uploads/cold/{run}-{index}.jpg", SAMPLE.read_bytes(), targets_spread(targets))
        message = {"MessageId": f"{run}-{index}", "ReceiptHandle": "-", "MD5OfBody": "-"}
        events.append(lambda_event([{**message, "Body": json.dumps(notification(BUCKET, source))}], _QUEUE_ARN))
        keys.append(source.key)
    path = log_dir / f"cold-{run}.json"
    spec = {"events": events, "bucket": BUCKET, "key": source.key, "keys": keys, "sidecar_suffix": SIDECAR_SUFFIX}
    path.write_text(json.dumps(spec))
    return path


def built_function(log_dir: Path) -> Path:
    """The function's code as ``sam build`` makes it (functions/reframe/Makefile), with its bytecode: in Lambda
    the code directory is read-only, so what the build does not compile every cold start compiles again."""
    built = log_dir / "function"
    make = ["make", "-s", "-C", str(FUNCTION_DIR), "build-ReframeFunction", f"ARTIFACTS_DIR={built}"]
    subprocess.run(  # noqa: S603 - the project's own makefile
        [*make, f"PYTHON={sys.executable}", "FUNCTION_PYC=1"],
        check=True,
        capture_output=True,
    )
    return built


def _child(mode: str, events_file: Path, *flags: str, api: str | None = None) -> subprocess.CompletedProcess[str]:
    """``api``: SEGMIND_API_MODE, None for the default (Segmind's async API); every other setting is the
    default too (the source check on), but for the idempotency table."""
    code = [str(events_file.parent / "function"), os.environ.get("PYTHONPATH", "")]  # built by cold_start first
    env = {k: v for k, v in os.environ.items() if k != "SEGMIND_API_MODE"} | ({"SEGMIND_API_MODE": api} if api else {})
    run = subprocess.run(  # noqa: S603 - our interpreter, our module
        [sys.executable, *flags, "-m", "benchmarks.cold_child", mode, str(events_file)],
        env={**env, "IDEMPOTENCY_TABLE": TABLE, "PYTHONPATH": os.pathsep.join(code)},
        check=False,
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    if run.returncode != 0:
        raise RuntimeError(f"the cold start child ({mode}) failed:\n{run.stderr[-3000:]}")
    return run


def _timings(mode: str, events_file: Path, api: str | None = None) -> dict[str, float]:
    timings: dict[str, float] = json.loads(_child(mode, events_file, api=api).stdout.splitlines()[-1])
    timings["cold"] = timings["imports"] + timings["clients"] + timings["first"] - timings["warm"]
    return timings


def _split(events_file: Path) -> list[tuple[str, float]]:
    """Own import time (``-X importtime``) of what the handler adds to the baseline, through its first event,
    by top-level package; the handler's own modules by module (their time is mostly building pydantic models)."""
    run = _child("split", events_file, "-X", "importtime")
    own: collections.defaultdict[str, float] = collections.defaultdict(float)
    for line in run.stderr.split("--\n", 1)[-1].splitlines():
        if line.startswith("import time:") and "|" in line and "self [us]" not in line:
            self_us, _cumulative, name = line.removeprefix("import time:").split("|")
            name = name.strip()
            parts = name.split(".")
            own[name if parts[0] == "reframe_pipeline" else parts[0]] += int(self_us) / 1000
    return sorted(own.items(), key=lambda item: -item[1])[:_SHOWN]


def _median(runs: list[dict[str, float]], part: str) -> float:
    return statistics.median(run[part] for run in runs)


def _parts(runs: list[dict[str, float]], clients: str, event: str) -> str:
    return (
        f"imports {_median(runs, 'imports'):.0f} ms, {clients} {_median(runs, 'clients'):.0f} ms, first {event} "
        f"{_median(runs, 'first'):.0f} ms, warm {event} {_median(runs, 'warm'):.0f} ms"
    )


def _whole(runs: list[dict[str, float]]) -> float:
    """A fresh process's first invocation, seconds: imports, clients and the first event."""
    return statistics.median(run["imports"] + run["clients"] + run["first"] for run in runs) / 1000


def _invocations(bench: Bench, sizes: Sizes, log_dir: Path) -> tuple[float, str]:
    """The issue's measure: the handler's first invocation in a fresh process (the default settings, 1 source x
    8 targets, 3 s generations) against a minimal function's making the same calls; the ratio and its details."""
    latency_s = 3 * sizes.latency_s
    configure_emulator(bench.emulator, latency_ms=int(latency_s * 1000), render="fast")
    handler: list[dict[str, float]] = []
    minimal: list[dict[str, float]] = []
    for run in range(max(1, sizes.cold_runs // 2)):  # interleaved, as below
        events = _events_file(bench, f"{run}-whole", log_dir, sizes.fanout_targets)
        minimal.append(_timings("minimal", events))
        handler.append(_timings("handler", events))
    ours, theirs = _whole(handler), _whole(minimal)
    details = (
        f"first invocations, medians of {len(handler)} fresh processes each, interleaved, {sizes.fanout_targets} "
        f"targets, {latency_s:g} s generations: the handler {ours:.2f} s ({_parts(handler, 'clients', 'event')}), "
        f"the minimal function {theirs:.2f} s ({_parts(minimal, 'S3 client', 'event')})"
    )
    return ours / theirs, details


def cold_start(bench: Bench, sizes: Sizes, log_dir: Path) -> Figure:
    configure_emulator(bench.emulator, latency_ms=0, render="fast")
    dynamodb = bench.moto.client("dynamodb")
    if TABLE not in dynamodb.list_tables()["TableNames"]:
        create_idempotency_table(dynamodb, TABLE)
    built_function(log_dir)
    handler: list[dict[str, float]] = []
    synchronous: list[dict[str, float]] = []
    baseline: list[dict[str, float]] = []
    for run in range(sizes.cold_runs):  # interleaved: a busy moment hits all alike
        events = _events_file(bench, str(run), log_dir)
        baseline.append(_timings("baseline", events))
        handler.append(_timings("handler", events))
        synchronous.append(_timings("handler", _events_file(bench, f"{run}-sync", log_dir), "sync"))
    added = ", ".join(f"{name} {ms:.0f}" for name, ms in _split(_events_file(bench, "split", log_dir)))
    whole, whole_details = _invocations(bench, sizes, log_dir)
    ours, theirs = _median(handler, "cold"), _median(baseline, "cold")
    return Figure(
        3,
        "Cold invocation with the default settings: a fresh process's first, 1 source x 8 targets, 3 s "
        "generations, handler / a minimal function making the same calls",
        f"{whole:.2f}; the cold start alone (2 targets, answers at once), handler / boto3, requests, "
        f"Logger/Metrics, one S3 client: {ours / theirs:.2f} ({ours:.0f} ms vs {theirs:.0f} ms), Segmind's sync "
        f"API: {_median(synchronous, 'cold') / theirs:.2f}",
        "<= 1.3",
        whole <= 1.3,
        f"{whole_details}. The cold start alone is imports + clients + first event - warm event: medians of "
        f"{len(handler)} fresh processes each, interleaved; handler ({TARGETS} targets, SQS batch, idempotency "
        f"table): {_parts(handler, 'S3 and DynamoDB clients', 'event')}; the same with SEGMIND_API_MODE=sync: "
        f"{_parts(synchronous, 'clients', 'event')}; baseline: {_parts(baseline, 'S3 client', 'HEAD')}; own import "
        f"time of what the handler adds through its first event, ms (-X importtime, inflated by its bookkeeping): "
        f"{added}",
    )
