"""Fixtures for running the real handler against moto's server and the emulator over HTTP."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

import pytest
import requests
from PIL import Image

from reframe_cli.logs import handler_output_to
from reframe_local import servers
from reframe_local.lambda_context import LocalContext
from reframe_local.servers import ServerProcess
from reframe_pipeline import handler
from reframe_pipeline.application.generations import GENERATION_PREFIX

from ..conftest import EMULATOR_API_KEY
from . import aws_faults as faults

IMAGES = Path(__file__).resolve().parents[2] / "examples" / "images"
BUCKET = "reframe-test"


@dataclass
class Stack:
    """The bucket, the emulator, and the handler configured to use them."""

    s3: Any
    emulator: ServerProcess
    monkeypatch: pytest.MonkeyPatch

    def put(self, key: str, body: bytes | dict[str, Any]) -> None:
        data = json.dumps(body).encode() if isinstance(body, dict) else body
        self.s3.put_object(Bucket=BUCKET, Key=key, Body=data)

    def put_image(self, key: str, name: str = "rocket.jpg") -> None:
        self.put(key, (IMAGES / name).read_bytes())

    def configure(self, **env: str) -> None:
        for name, value in env.items():
            self.monkeypatch.setenv(name, value)
        # The handler builds its settings and clients once per process, as in Lambda: rebuild them.
        handler.reset()

    def invoke(self, event: dict[str, Any], timeout_s: float = 120) -> dict[str, Any]:
        result: dict[str, Any] = handler.lambda_handler(event, LocalContext(timeout_s=timeout_s))
        return result

    def read_json(self, key: str) -> dict[str, Any]:
        return json.loads(self.s3.get_object(Bucket=BUCKET, Key=key)["Body"].read())

    def image(self, key: str) -> Image.Image:
        return Image.open(io.BytesIO(self.s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()))

    def keys(self, prefix: str = "") -> list[str]:
        pages = self.s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix)
        return sorted(item["Key"] for page in pages for item in page.get("Contents", []))

    def outputs(self, prefix: str = "") -> list[str]:
        """The keys without the kept generations (their own tests look at them)."""
        return [key for key in self.keys(prefix) if f"/{GENERATION_PREFIX}" not in key]

    def stats(self) -> dict[str, Any]:
        response = requests.get(f"{self.emulator.url}/_emulator/stats", timeout=10)
        response.raise_for_status()
        return dict(response.json())

    def faults(self, *script: str) -> None:
        requests.post(f"{self.emulator.url}/_emulator/faults", json={"script": list(script)}, timeout=10)

    def emulator_config(self, **options: Any) -> None:
        response = requests.post(f"{self.emulator.url}/_emulator/config", json=options, timeout=10)
        response.raise_for_status()


def s3_event(key: str, name: str = "ObjectCreated:Put", bucket: str = BUCKET) -> dict[str, Any]:
    """An S3 notification as AWS sends it: the key URL-encoded."""
    return {
        "Records": [
            {
                "eventVersion": "2.1",
                "eventSource": "aws:s3",
                "awsRegion": servers.REGION,
                "eventName": name,
                "s3": {"bucket": {"name": bucket}, "object": {"key": quote_plus(key, safe="/")}},
            }
        ]
    }


def sqs_event(*bodies: dict[str, Any] | str) -> dict[str, Any]:
    return {
        "Records": [
            {
                "messageId": f"m-{index}",
                "receiptHandle": f"r-{index}",
                "body": body if isinstance(body, str) else json.dumps(body),
                "attributes": {"ApproximateReceiveCount": "1"},
                "messageAttributes": {},
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:000000000000:reframe",
                "awsRegion": servers.REGION,
            }
            for index, body in enumerate(bodies)
        ]
    }


@pytest.fixture
def stack(
    aws_env: str, moto_reset: ServerProcess, fresh_emulator: ServerProcess, monkeypatch: pytest.MonkeyPatch
) -> Stack:
    emulator = fresh_emulator
    s3 = servers.client("s3", aws_env)
    s3.create_bucket(Bucket=BUCKET)
    result = Stack(s3=s3, emulator=emulator, monkeypatch=monkeypatch)
    result.configure(
        REFRAME_PROVIDER="segmind",
        SEGMIND_API_URL=f"{emulator.url}/v1/ideogram-3-reframe",
        SEGMIND_API_KEY=EMULATOR_API_KEY,
        BACKOFF_BASE_S="0.05",
        BACKOFF_MAX_S="0.2",
        POWERTOOLS_METRICS_NAMESPACE="ReframeTest",
    )
    return result


@pytest.fixture
def ideogram(stack: Stack) -> Stack:
    """The stack with REFRAME_PROVIDER=ideogram, on the emulator's Ideogram endpoint."""
    stack.configure(
        REFRAME_PROVIDER="ideogram",
        IDEOGRAM_API_URL=f"{stack.emulator.url}/v1/ideogram-v3/reframe",
        IDEOGRAM_API_KEY=EMULATOR_API_KEY,
    )
    return stack


@pytest.fixture
def logs() -> Iterator[io.StringIO]:
    """Everything the handler logs (JSON lines) and prints (EMF metrics) during the test."""
    stream = io.StringIO()
    with handler_output_to(stream):
        yield stream


@pytest.fixture
def aws_faults(stack: Stack) -> Iterator[faults.AwsFaults]:
    """AWS errors and hangs for the handler's own clients (tests/integration/aws_faults.py)."""
    injected = faults.install(stack.monkeypatch)
    yield injected
    handler.reset()  # no client built with the hooks outlives the test
    injected.close()
