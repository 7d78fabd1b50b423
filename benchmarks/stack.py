"""The servers the figures run against, as child processes (``reframe_local.servers``), and the handler of
this process pointed at them."""

from __future__ import annotations

import io
import json
import os
import resource
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
from PIL import Image

from reframe_cli.backfill import notification
from reframe_cli.logs import handler_output_to
from reframe_local import servers
from reframe_local.lambda_context import LocalContext
from reframe_local.moto_stack import point_handler_at
from reframe_local.servers import ServerProcess
from reframe_pipeline.application.outputs import is_variant
from reframe_pipeline.application.values import ObjectInfo
from reframe_pipeline.domain.events import SIDECAR_SUFFIX

API_KEY = "bench-key"
BUCKET = "bench"


def provider_env(emulator: ServerProcess) -> dict[str, str]:
    """The handler's settings for the emulator; backoff short, as the limiter does the pacing."""
    return {
        "REFRAME_PROVIDER": "segmind",
        "SEGMIND_API_URL": f"{emulator.url}/v1/ideogram-3-reframe",
        "SEGMIND_API_KEY": API_KEY,
        "BACKOFF_BASE_S": "0.1",
        "BACKOFF_MAX_S": "1",
        "POWERTOOLS_METRICS_NAMESPACE": "ReframeBench",
        # Every folder default is in the bucket before the uploads: no image waits for a sidecar of its own.
        "SIDECAR_WAIT_S": "0",
    }


def configure_emulator(emulator: ServerProcess, **options: Any) -> None:
    admin = f"{emulator.url}/_emulator"
    requests.post(f"{admin}/reset", timeout=10).raise_for_status()
    requests.post(f"{admin}/config", json=options, timeout=10).raise_for_status()


def emulator_stats(emulator: ServerProcess) -> dict[str, Any]:
    response = requests.get(f"{emulator.url}/_emulator/stats", timeout=10)
    response.raise_for_status()
    return dict(response.json())


def peak_rss_mb() -> float:
    """This process's own peak resident memory (VmHWM). Not ``ru_maxrss``: Linux starts a child's at its
    parent's resident size when it forks, so a child of a large process would report the parent's."""
    status = Path("/proc/self/status")
    for line in status.read_text().splitlines() if status.exists() else []:
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024  # kB
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # elsewhere: the best there is


def jpeg(width: int, height: int) -> bytes:
    """A smooth picture (a small file even at 4096x4096, under the 10 MB source limit)."""
    gradient = Image.linear_gradient("L").resize((width, height))
    image = Image.merge("RGB", (gradient, gradient.transpose(Image.Transpose.FLIP_LEFT_RIGHT), gradient))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=90)
    return out.getvalue()


def variant_count(s3: Any, bucket: str, prefix: str) -> int:
    """The variants under an output prefix (each folder's manifest, prepared source and generations left out)."""
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return sum(is_variant(item["Key"].rsplit("/", 1)[-1]) for page in pages for item in page.get("Contents", []))


def sidecar(resolutions: list[str]) -> bytes:
    return json.dumps({"version": 1, "targets": [{"resolution": r} for r in resolutions]}).encode()


@dataclass
class Bench:
    """moto and the emulator, and the in-process handler configured to use them."""

    moto: ServerProcess
    emulator: ServerProcess

    def __post_init__(self) -> None:
        self.s3 = self.moto.client("s3")

    def upload(self, key: str, body: bytes, resolutions: list[str]) -> ObjectInfo:
        """A source with its own sidecar; neither causes an event (the bucket has no notifications)."""
        self.s3.put_object(Bucket=BUCKET, Key=key + SIDECAR_SUFFIX, Body=sidecar(resolutions))
        etag = self.s3.put_object(Bucket=BUCKET, Key=key, Body=body)["ETag"].strip('"')
        return ObjectInfo(key=key, etag=etag, size=len(body))


def invoke(source: ObjectInfo) -> dict[str, Any]:
    """The handler of this process on the source's S3 notification, its logs and metrics kept off the terminal;
    raises unless every variant was created."""
    from reframe_pipeline.handler import lambda_handler

    with handler_output_to(io.StringIO()):
        result: dict[str, Any] = lambda_handler(notification(BUCKET, source), LocalContext(timeout_s=120))
    statuses = [v["status"] for outcome in result["results"] for v in outcome["variants"]]
    if not statuses or set(statuses) != {"created"}:
        raise RuntimeError(f"the handler did not create every variant: {result}")
    return result


@contextmanager
def running(log_dir: Path) -> Iterator[tuple[ServerProcess, ServerProcess]]:
    """moto and the emulator, stopped (by pid) on the way out."""
    with (
        servers.start_moto(log_path=log_dir / "moto.log") as moto,
        servers.start_emulator(API_KEY, log_path=log_dir / "emulator.log") as emulator,
    ):
        yield moto, emulator


@contextmanager
def settings_of(bench: Bench, **settings: str) -> Iterator[None]:
    """The handler of this process with ``settings`` for the block, then with what it had before."""
    before = {name: os.environ.get(name) for name in settings}
    os.environ.update(settings)
    point_handler_at(bench.moto.url)
    try:
        yield
    finally:
        for name, value in before.items():
            if value is None:
                del os.environ[name]
            else:
                os.environ[name] = value
        point_handler_at(bench.moto.url)


def point_handler(moto: ServerProcess, emulator: ServerProcess, **settings: str) -> Bench:
    """This process's handler on moto and the emulator, its cached settings and clients rebuilt."""
    os.environ.update(provider_env(emulator), **settings)
    point_handler_at(moto.url)
    bench = Bench(moto, emulator)
    if BUCKET not in {b["Name"] for b in bench.s3.list_buckets()["Buckets"]}:
        bench.s3.create_bucket(Bucket=BUCKET)
    return bench
