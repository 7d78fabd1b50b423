"""``python -m benchmarks.features [--runs N] [--baseline REV]``: what notices (EVENT_BUS_NAME) and C2PA signing
(C2PA_SIGNING=on) cost a cold start, and what signing costs per variant.

Each cold start is a fresh process that imports the handler and handles its first event: one upload, one target,
the local engine, against moto's S3 (and EventBridge). The configurations run interleaved, so a busy moment hits
all alike; each run's manifest is checked (the variant created, signed exactly when signing is on). ``--baseline
REV`` (repeatable) adds the handler of that git revision with both features off, e.g. the commit before notices
and provenance existed (``make bench``: BENCH_BASELINE). ``make bench`` runs it after the figures
and writes its section of docs/benchmarks.md."""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Any

from PIL import Image

from reframe_cli.samples import IMAGES
from reframe_local import servers
from reframe_local.moto_stack import NOTICE_BUS, wire_notices
from reframe_local.signing_ca import signer_bundle
from reframe_pipeline.adapters.c2pa_signer import C2paSigner
from reframe_pipeline.application.values import ParentImage
from reframe_pipeline.domain.imaging import insert_xmp
from reframe_pipeline.domain.local_engine import extend_canvas
from reframe_pipeline.domain.provenance import Credits, provenance_for, xmp_packet
from reframe_pipeline.domain.resolutions import Size

from .report import REPORT, write_section

ROOT = Path(__file__).resolve().parents[1]
START, END = "<!-- features:start -->", "<!-- features:end -->"
BUCKET = "bench-features"
SIDECAR = {"version": 1, "targets": [{"resolution": "1536x640"}]}
# Feature modules a cold start without the features must not load.
FEATURE_MODULES = ("c2pa", "cryptography", "reframe_pipeline.adapters.c2pa_signer")

# The child: its clocks start before the handler's import and stop after its first event. CPU time (the process's
# own, every thread) is the figure: on a shared machine wall time mostly measures the neighbours.
_CHILD = """\
import json, sys, time
from reframe_local.lambda_context import LocalContext
started, cpu = time.perf_counter(), time.process_time()
from reframe_pipeline import handler
imported_ms = (time.process_time() - cpu) * 1000
result = handler.lambda_handler(json.loads(sys.argv[1]), LocalContext(timeout_s=120))
took_ms, wall_ms = (time.process_time() - cpu) * 1000, (time.perf_counter() - started) * 1000
loaded = sorted(m for m in sys.modules if m.startswith(tuple(sys.argv[3].split(","))))
with open(sys.argv[2], "w") as out:
    times = {"import": imported_ms, "event": took_ms, "wall": wall_ms}
    json.dump({**times, "loaded": loaded, "handler": handler.__file__}, out)
"""


def _event(key: str) -> dict[str, Any]:
    record = {"eventSource": "aws:s3", "eventName": "ObjectCreated:Put", "awsRegion": servers.REGION}
    return {"Records": [{**record, "s3": {"bucket": {"name": BUCKET}, "object": {"key": key}}}]}


def _cold_start(env: dict[str, str], key: str, result_path: Path) -> dict[str, Any]:
    argv = [sys.executable, "-c", _CHILD, json.dumps(_event(key)), str(result_path), ",".join(FEATURE_MODULES)]
    subprocess.run(argv, env=env, check=True, capture_output=True, timeout=120)  # noqa: S603
    measured: dict[str, Any] = json.loads(result_path.read_text())
    return measured


def _configurations(moto_url: str, signer: Path, code: Path, baselines: dict[str, Path]) -> dict[str, dict[str, str]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "C2PA_", "WEBHOOK_", "EVENT_BUS"))}
    env.update(
        AWS_ENDPOINT_URL=moto_url,
        AWS_ACCESS_KEY_ID="test",
        AWS_SECRET_ACCESS_KEY="test",  # noqa: S106 - moto accepts any credentials
        AWS_DEFAULT_REGION=servers.REGION,
        REFRAME_PROVIDER="local",
        PYTHONPATH=str(code),
    )
    signing = {"C2PA_SIGNING": "on", "C2PA_SIGNER_FILE": str(signer)}
    configurations = {
        "both off": env,
        "notices on": {**env, "EVENT_BUS_NAME": NOTICE_BUS},
        "signing on": {**env, **signing},
        "both on": {**env, **signing, "EVENT_BUS_NAME": NOTICE_BUS},
    }
    for revision, folder in baselines.items():
        configurations[f"revision {revision}, both off"] = {**env, "PYTHONPATH": str(folder)}
    return configurations


# Per configuration, per run: CPU ms to import, CPU ms to import and handle the first event, and that in wall time.
Times = dict[str, list[tuple[float, float, float]]]


def checkout(revision: str, work: Path) -> Path:
    """The function code (functions/reframe) of ``revision``, from this repository's history."""
    folder = work / f"revision-{revision}"
    folder.mkdir()
    archive = subprocess.run(  # noqa: S603
        ["git", "archive", revision, "functions/reframe"],  # noqa: S607 - git from PATH, as a developer runs it
        cwd=ROOT,
        check=True,
        capture_output=True,
    ).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(folder, filter="data")
    return folder / "functions" / "reframe"


def cold_starts(runs: int, baselines: dict[str, Path], work: Path) -> tuple[Times, list[str]]:
    signer = work / "signer.pem"
    signer.write_text(signer_bundle())
    source = (IMAGES / "rocket.jpg").read_bytes()
    times: Times = {}
    loaded_when_off: set[str] = set()
    with servers.start_moto(log_path=work / "moto.log") as moto:
        s3 = moto.client("s3")
        s3.create_bucket(Bucket=BUCKET)
        wire_notices(moto.client("events"), moto.client("sqs"))
        # This checkout's code is copied beside the revisions': imported from the repository itself it measured
        # 20-30 ms more CPU than the same commit extracted, on the same machine.
        code = work / "this-checkout"
        shutil.copytree(ROOT / "functions" / "reframe", code, ignore=shutil.ignore_patterns("__pycache__"))
        configurations = _configurations(moto.url, signer, code, baselines)
        names = list(configurations)
        for run in range(-1, runs):  # run -1 warms the disk cache and writes bytecode: not counted
            # Each round starts one configuration later: each takes every place in the order equally often.
            for index, name in enumerate(names[run % len(names) :] + names[: run % len(names)]):
                env = configurations[name]
                key = f"uploads/run{run + 1}-{index}.jpg"  # a new source each time: the variant is made, not existing
                s3.put_object(Bucket=BUCKET, Key=key, Body=source)
                s3.put_object(Bucket=BUCKET, Key=key + ".reframe.json", Body=json.dumps(SIDECAR).encode())
                measured = _cold_start(env, key, work / "result.json")
                written = s3.get_object(Bucket=BUCKET, Key=f"reframed/{key.removeprefix('uploads/')}/manifest.json")
                manifest = json.loads(written["Body"].read())
                [variant] = manifest["variants"]
                assert variant["status"] == "created", variant
                # Each its own handler, the one on its path: a revision's, or this checkout's (which says whether
                # it signed).
                assert Path(measured["handler"]).is_relative_to(env["PYTHONPATH"]), (name, measured)
                if not name.startswith("revision "):
                    assert variant["provenance"]["signed"] == (name in ("signing on", "both on")), (name, variant)
                if run < 0:
                    continue
                if name == "both off":
                    loaded_when_off.update(measured["loaded"])
                times.setdefault(name, []).append((measured["import"], measured["event"], measured["wall"]))
    return times, sorted(loaded_when_off)


def signing_ms(runs: int) -> tuple[float, float, int]:
    """(first signature in the process, including c2pa's import; median of the next; bytes added) for a
    1536x640 PNG variant of rocket.jpg, XMP in, as the pipeline signs it."""
    bundle = signer_bundle()
    source = (IMAGES / "rocket.jpg").read_bytes()
    with Image.open(io.BytesIO(source)) as image:
        variant = extend_canvas(image.convert("RGB"), Size(1536, 640))
    out = io.BytesIO()
    variant.save(out, "PNG")
    provenance = provenance_for("segmind")
    body = insert_xmp(out.getvalue(), "png", xmp_packet(provenance, Credits()))
    signer = C2paSigner(lambda: bundle)
    parent = ParentImage("rocket.jpg", lambda: source)
    took: list[float] = []
    signed = b""
    for _ in range(runs + 1):
        started = time.perf_counter()
        signed = signer.sign(body, "image/png", parent, provenance) or b""
        took.append((time.perf_counter() - started) * 1000)
    assert signed, "signing failed"
    return took[0], statistics.median(took[1:]), len(signed) - len(body)


def _cells(runs: list[float], reference: float) -> str:
    median = statistics.median(runs)
    return f"{median:.0f} ({median - reference:+.0f}; {min(runs):.0f}-{max(runs):.0f})"


def report(times: Times, loaded_when_off: list[str], signing: tuple[float, float, int]) -> str:
    off = [statistics.median(run[column] for run in times["both off"]) for column in range(3)]
    rows = [
        "| " + " | ".join([name, *(_cells([run[column] for run in runs], off[column]) for column in range(3))]) + " |"
        for name, runs in times.items()
    ]
    first, then, added = signing
    loaded = ", ".join(f"`{m}`" for m in loaded_when_off) or "none"
    return f"""{START}
## Cold start with notices and C2PA signing, and signing per variant

Written by `python -m benchmarks.features` (`make bench` runs it after the figures above). A fresh process
imports the handler and handles its first event (one upload, one 1536x640 target, the local engine, moto's S3
and EventBridge). Medians of {len(times["both off"])} runs per configuration, interleaved (each round starts one
configuration later), in ms, with the difference from "both off" and the range. CPU time is the process's own
(every thread; moto's is not counted): the figure to compare on a shared machine, where wall time mostly measures
the neighbours. "both off" against the revisions (this code as it was at that commit, copied and imported the
same way) is what the features cost when they are off.

| configuration | import of the handler, CPU | import + first event, CPU | import + first event, wall |
| --- | --- | --- | --- |
{chr(10).join(rows)}

With both off, feature modules loaded: {loaded} (c2pa, cryptography and the signing adapter are imported only
with `C2PA_SIGNING=on`; with no bus no EventBridge client is built).

Signing one 1536x640 PNG variant (XMP in, the JPEG source as parentOf ingredient, ES256): the first signature in a
process {first:.0f} ms (it loads c2pa's native library), then {then:.1f} ms each (median); the credentials add
{added / 1024:.1f} KB to the file.
{END}
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.features", description=__doc__)
    parser.add_argument("--runs", type=int, default=7, help="cold starts per configuration (default 7)")
    parser.add_argument(
        "--baseline", metavar="REV", action="append", default=[], help="a git revision to compare (repeatable)"
    )
    parser.add_argument("--output", type=Path, help=f"report to update (default {REPORT}; '-' for none)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="reframe-bench-features-") as work:
        baselines = {revision: checkout(revision, Path(work)) for revision in args.baseline}
        times, loaded = cold_starts(args.runs, baselines, Path(work))
        signing = signing_ms(args.runs)
    section = report(times, loaded, signing)
    print(section)
    if str(args.output) != "-":
        write_section(section, (START, END), args.output or REPORT)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
