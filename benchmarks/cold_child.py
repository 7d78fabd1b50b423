"""Figure 3's fresh process: ``python -m benchmarks.cold_child handler|baseline|minimal|split EVENTS_FILE``.

EVENTS_FILE holds ``{"events": [first, second], "bucket": ..., "key": ..., "keys": [...], "sidecar_suffix": ...}``
(the two sources' keys, the last one's alone, and the project's sidecar suffix); the environment is that of a
process that ran ``stack.point_handler`` (endpoint, provider settings). Nothing heavy is imported before
the clock starts. Prints one JSON line: milliseconds of the imports, of building the clients, of the first
event and of a second, warm, one.

- ``handler``: import the handler, build its clients (``handler.pipeline()``), then run it on the two SQS
  events (two sources alike).
- ``baseline``: what any function of this kind pays: import boto3, requests and Powertools' Logger and
  Metrics, build one S3 client; its "event" is one S3 request (HEAD of the source).
- ``minimal``: a minimal function making the calls the handler makes for the same two sources: import boto3
  and requests, build one S3 client; its "event" reads the source's sidecar, asks Segmind's synchronous API for
  every target at once (the source as a presigned URL), writes each answer and a manifest.
- ``split``: the baseline's imports and client, a marker line on stderr, then as ``handler``: run under
  ``-X importtime``, what follows the marker is what the handler adds.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any

TIMEOUT_S = 300  # the template's default function timeout: every provider call may start
PARTS = ("imports", "clients", "first", "warm")


def _timed[T](step: Callable[[], T]) -> tuple[float, T]:
    started = time.perf_counter()
    result = step()
    return (time.perf_counter() - started) * 1000, result


def _baseline_imports() -> None:
    import boto3  # noqa: F401
    import requests  # noqa: F401 - any function calling an HTTP API imports it
    from aws_lambda_powertools import Logger, Metrics

    Logger(), Metrics()


def _s3_client() -> Any:
    import boto3

    return boto3.client("s3")


def _import_handler() -> Any:
    from reframe_pipeline import handler

    return handler


def _handler(spec: dict[str, Any]) -> list[float]:
    from reframe_local.lambda_context import LocalContext

    imported, handler = _timed(_import_handler)
    built, _pipeline = _timed(handler.pipeline)
    timings = [imported, built]
    for event in spec["events"]:
        elapsed, result = _timed(partial(handler.lambda_handler, event, LocalContext(TIMEOUT_S)))
        if result != {"batchItemFailures": []}:
            raise RuntimeError(f"the handler failed the event, so its timing means nothing: {result}")
        timings.append(elapsed)
    return timings


def _baseline(spec: dict[str, Any]) -> list[float]:
    imported, _ = _timed(_baseline_imports)
    built, s3 = _timed(_s3_client)
    head = partial(s3.head_object, Bucket=spec["bucket"], Key=spec["key"])
    return [imported, built, _timed(head)[0], _timed(head)[0]]


def _minimal_imports() -> None:
    import boto3  # noqa: F401
    import requests  # noqa: F401


def _same_calls(s3: Any, bucket: str, key: str, sidecar_suffix: str) -> None:
    import requests

    targets = json.loads(s3.get_object(Bucket=bucket, Key=key + sidecar_suffix)["Body"].read())["targets"]
    image = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=600)
    session = requests.Session()

    def variant(resolution: str) -> dict[str, str]:
        answer = session.post(
            os.environ["SEGMIND_API_URL"],
            json={"image": image, "resolution": resolution, "rendering_speed": "DEFAULT"},
            headers={"x-api-key": os.environ["SEGMIND_API_KEY"]},
            timeout=TIMEOUT_S,
        )
        answer.raise_for_status()
        out = f"minimal/{key}/{resolution}.jpg"
        s3.put_object(Bucket=bucket, Key=out, Body=answer.content, ContentType="image/jpeg")
        return {"resolution": resolution, "key": out}

    with ThreadPoolExecutor(len(targets)) as pool:
        made = list(pool.map(variant, [target["resolution"] for target in targets]))
    s3.put_object(Bucket=bucket, Key=f"minimal/{key}/manifest.json", Body=json.dumps({"variants": made}).encode())


def _minimal(spec: dict[str, Any]) -> list[float]:
    imported, _ = _timed(_minimal_imports)
    built, s3 = _timed(_s3_client)
    calls = [partial(_same_calls, s3, spec["bucket"], key, spec["sidecar_suffix"]) for key in spec["keys"]]
    return [imported, built, *(_timed(event)[0] for event in calls)]


def _split(spec: dict[str, Any]) -> list[float]:
    _baseline_imports()
    _s3_client()
    print("--", file=sys.stderr, flush=True)
    return _handler(spec)


def main(argv: list[str]) -> None:
    mode, events_file = argv
    spec = json.loads(Path(events_file).read_text())
    real_stdout, sys.stdout = sys.stdout, open(os.devnull, "w")  # noqa: SIM115 - the handler's logs and metrics
    timings = {"handler": _handler, "baseline": _baseline, "minimal": _minimal, "split": _split}[mode](spec)
    print(json.dumps(dict(zip(PARTS, timings, strict=True))), file=real_stdout)


if __name__ == "__main__":
    main(sys.argv[1:])
