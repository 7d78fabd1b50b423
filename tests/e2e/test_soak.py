"""Fault-injection soak through the real path: moto's S3 -> SQS -> pollers -> handler -> emulator.

Every upload's event is delivered twice (moto's notification plus a copy), several pollers take
batches at once so some duplicates run concurrently, and the emulator fails a fifth of the calls
in varied ways. Nothing may be lost and nothing may be paid twice.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
import requests
from PIL import Image

from reframe_cli.localstack import LocalStack, wait_until
from reframe_cli.servers import ServerProcess

from ..conftest import EMULATOR_API_KEY

SOURCES = 50
TARGETS = [{"resolution": "1024x1024"}, {"aspect_ratio": "16:9"}, {"size": "320x240"}]
SIZES = {"1024x1024.png": (1024, 1024), "1312x736.png": (1312, 736), "320x240.png": (320, 240)}
FAULT_KINDS = ["429", "429-no-retry-after", "500", "502", "503", "504", "garbage", "truncated", "reset", "slow:300"]
TABLE = "soak-idempotency"


def source_image(index: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (320, 200), (index * 5 % 256, 120, 255 - index * 5 % 256)).save(out, "JPEG")
    return out.getvalue()


def s3_message(bucket: str, key: str) -> str:
    return json.dumps(
        {
            "Records": [
                {
                    "eventSource": "aws:s3",
                    "eventName": "ObjectCreated:Put",
                    "s3": {"bucket": {"name": bucket}, "object": {"key": key}},
                }
            ]
        }
    )


@pytest.mark.slow
def test_soak(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fresh_emulator: ServerProcess):
    emulator = fresh_emulator
    # The local stack points the handler at itself through the environment: record it to restore.
    for name in ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION", "AWS_REGION"):
        monkeypatch.setenv(name, "")
    monkeypatch.setenv("REFRAME_PROVIDER", "segmind")
    monkeypatch.setenv("SEGMIND_API_URL", f"{emulator.url}/v1/ideogram-3-reframe")
    monkeypatch.setenv("SEGMIND_API_KEY", EMULATOR_API_KEY)
    monkeypatch.setenv("IDEMPOTENCY_TABLE", TABLE)
    monkeypatch.setenv("BACKOFF_BASE_S", "0.05")
    monkeypatch.setenv("BACKOFF_MAX_S", "0.3")
    monkeypatch.setenv("MAX_ATTEMPTS", "3")
    admin = emulator.url + "/_emulator"
    requests.post(
        f"{admin}/faults", json={"random": {"rate": 0.2, "seed": 11, "kinds": FAULT_KINDS}}, timeout=10
    ).raise_for_status()

    with LocalStack.start(tmp_path, bucket="soak-bucket", retry_delay_s=2, max_receives=6) as stack:
        stack.moto.client("dynamodb").create_table(
            TableName=TABLE,
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        bucket = stack.wiring.bucket
        stack.s3.put_object(
            Bucket=bucket, Key="uploads/soak/_reframe.json", Body=json.dumps({"version": 1, "targets": TARGETS})
        )
        stack.start_pollers(3)
        keys = [f"uploads/soak/photo {i:02d}.jpg" for i in range(SOURCES)]
        for index, key in enumerate(keys):
            stack.s3.put_object(Bucket=bucket, Key=key, Body=source_image(index))
            stack.sqs.send_message(QueueUrl=stack.wiring.queue_url, MessageBody=s3_message(bucket, key))

        def listing() -> list[str]:
            pages = stack.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix="reframed/soak/")
            return [item["Key"] for page in pages for item in page.get("Contents", [])]

        def all_done() -> bool:
            return stack.pending() == 0 and sum(k.endswith(".png") for k in listing()) == SOURCES * len(TARGETS)

        def failures() -> list[str]:
            found = []
            for key in listing():
                if key.endswith("manifest.json"):
                    doc = json.loads(stack.s3.get_object(Bucket=bucket, Key=key)["Body"].read())
                    found += [json.dumps(v["error"]) for v in doc["variants"] if v["status"] == "failed"]
            return found[:6]

        assert wait_until(all_done, timeout_s=300), (
            f"{failures()} dead={stack.dead_letters()} "
            f"pending={stack.pending()} pngs={sum(k.endswith('.png') for k in listing())} "
            f"odd={[k for k in listing() if k.rsplit('/', 1)[-1] not in [*SIZES, 'manifest.json']][:8]}"
        )
        outputs = listing()
        dead = stack.dead_letters()

    stats = requests.get(f"{admin}/stats", timeout=10).json()
    requests.post(f"{admin}/reset", timeout=10)
    variants = [key for key in outputs if not key.endswith("manifest.json")]
    assert len(variants) == len(set(variants)) == SOURCES * len(TARGETS)
    assert sorted({key.rsplit("/", 1)[-1] for key in variants}) == sorted(SIZES)
    assert sum(key.endswith("manifest.json") for key in outputs) == SOURCES
    assert stats["billed"] == SOURCES * len(TARGETS)  # duplicates paid: zero
    assert stats["faults_injected"] > 0.1 * stats["requests"]
    assert dead == 0
    print(  # the figures quoted in the README's reliability section
        f"\nsoak: {SOURCES} sources x {len(TARGETS)} targets, {2 * SOURCES} events for {SOURCES} uploads, "
        f"{stats['requests']} calls, {stats['faults_injected']} faults injected, {stats['billed']} billed, "
        f"duplicates paid: {stats['billed'] - len(variants)}, dead letters: {dead}"
    )
