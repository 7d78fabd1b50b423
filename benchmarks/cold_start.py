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

from .figures import ROOT, SAMPLE, Figure, Sizes, targets_spread
from .stack import BUCKET, Bench, configure_emulator

TABLE = "bench-cold"  # deployed, the function has its idempotency table: the cold start builds its client
TARGETS = 2
_QUEUE_ARN = "arn:aws:sqs:us-east-1:123456789012:bench-cold"
_SHOWN = 8  # packages named in the split
FUNCTION_DIR = ROOT / "functions" / "reframe"


def _events_file(bench: Bench, run: str, log_dir: Path) -> Path:
    """Two fresh sources alike (none of their variants exists yet), each as an SQS batch of one record."""
    events = []
    for index in range(2):
        source = bench.upload(f"uploads/cold/{run}-{index}.jpg", SAMPLE.read_bytes(), targets_spread(TARGETS))
        message = {"MessageId": f"{run}-{index}", "ReceiptHandle": "-", "MD5OfBody": "-"}
        events.append(lambda_event([{**message, "Body": json.dumps(notification(BUCKET, source))}], _QUEUE_ARN))
    path = log_dir / f"cold-{run}.json"
    path.write_text(json.dumps({"events": events, "bucket": BUCKET, "key": source.key}))
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

    def median(runs: list[dict[str, float]], part: str) -> float:
        return statistics.median(run[part] for run in runs)

    ours, theirs = median(handler, "cold"), median(baseline, "cold")
    ratio = ours / theirs
    sync_ms = median(synchronous, "cold")
    added = ", ".join(f"{name} {ms:.0f}" for name, ms in _split(_events_file(bench, "split", log_dir)))

    def parts(runs: list[dict[str, float]], clients: str, event: str) -> str:
        return (
            f"imports {median(runs, 'imports'):.0f} ms, {clients} {median(runs, 'clients'):.0f} ms, first {event} "
            f"{median(runs, 'first'):.0f} ms, warm {event} {median(runs, 'warm'):.0f} ms"
        )

    return Figure(
        3,
        "Cold start: imports + clients + first event - warm event, handler / boto3, requests, Logger/Metrics, "
        "one S3 client",
        f"{ratio:.2f} ({ours:.0f} ms vs {theirs:.0f} ms); Segmind's sync API: {sync_ms / theirs:.2f}",
        "<= 1.3",
        ratio <= 1.3,
        f"medians of {len(handler)} fresh processes each, interleaved; handler "
        f"({TARGETS} targets, SQS batch, idempotency table): {parts(handler, 'S3 and DynamoDB clients', 'event')}; "
        f"the same with SEGMIND_API_MODE=sync: {parts(synchronous, 'clients', 'event')}; "
        f"baseline: {parts(baseline, 'S3 client', 'HEAD')}; own import time of what the handler adds through "
        f"its first event, ms (-X importtime, inflated by its bookkeeping): {added}",
    )
