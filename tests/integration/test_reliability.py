"""Never pay twice, stop before the deadline, and never leak the key."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from reframe_local import servers
from reframe_local.moto_stack import create_idempotency_table as create_table
from reframe_pipeline.observability import logger

from ..conftest import EMULATOR_API_KEY
from .conftest import Stack, s3_event, sqs_event

SOURCE = "uploads/dup/photo.jpg"
OUT = "reframed/dup/photo.jpg/"
THREE = {"version": 1, "targets": [{"resolution": "1024x1024"}, {"aspect_ratio": "16:9"}, {"size": "300x200"}]}
TABLE = "reframe-idempotency"


def create_idempotency_table(dynamodb: Any) -> None:
    create_table(dynamodb, TABLE)


def invoke_in_subprocess(event_file: Path) -> dict:
    """A separate process, like a second Lambda instance handling the duplicate."""
    result = subprocess.run(
        [sys.executable, "-m", "reframe_cli.cli", "invoke", "--event", str(event_file)],
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return json.loads(result.stdout)


def paid_per_resolution(stack: Stack) -> Counter[str]:
    """The emulator's ledger: generations billed, by the resolution asked for."""
    paid: Counter[str] = Counter()
    for call in stack.stats()["calls"]:
        paid[str(call["resolution"])] += call["billed"]
    return +paid  # only those billed


def test_concurrent_duplicates_pay_once_per_variant(stack: Stack, aws_env: str, tmp_path: Path):
    dynamodb = servers.client("dynamodb", aws_env)
    create_idempotency_table(dynamodb)
    stack.configure(IDEMPOTENCY_TABLE=TABLE)
    stack.emulator_config(latency_ms=1500)  # long enough for the two invocations to overlap
    stack.put_image(SOURCE)
    stack.put(SOURCE + ".reframe.json", THREE)
    event_file = tmp_path / "event.json"
    event_file.write_text(json.dumps(sqs_event(s3_event(SOURCE))))

    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(invoke_in_subprocess, [event_file, event_file]))

    # Each variant paid exactly once. Either duplicate may have found one of the other's variants in progress
    # and handed its message back (with three variants, both can): that is the design, not a second payment.
    assert sorted(paid_per_resolution(stack).values()) == [1, 1, 1]
    assert all(set(r) == {"batchItemFailures"} for r in results)
    redelivered = stack.invoke(sqs_event(s3_event(SOURCE)))
    assert redelivered == {"batchItemFailures": []}
    manifest = stack.read_json(OUT + "manifest.json")
    assert [v["status"] for v in manifest["variants"]] == ["existing"] * 3  # everything made, and listed
    assert stack.stats()["billed"] == 3
    ids = [item["id"]["S"] for item in dynamodb.scan(TableName=TABLE)["Items"]]
    assert sum(not i.startswith("journal#") for i in ids) == 3  # one idempotency record per variant


def test_time_budget_stops_new_calls_and_keeps_finished_variants(stack: Stack):
    # One call at a time, 2 s each, 2.8 s + 5 s needed to start one, 11.5 s in all: the first starts at once,
    # the second by 3.7 s even on a loaded machine, the third (after 4 s at the earliest) never. The sync API
    # keeps each call one request long.
    stack.configure(
        CALL_BUDGET_MS="2800",
        READ_TIMEOUT_S="2.8",
        UPLOAD_RESERVE_MS="5000",
        MAX_PARALLEL_CALLS="1",
        SEGMIND_API_MODE="sync",
    )
    stack.emulator_config(latency_ms=2000)
    stack.put_image(SOURCE)
    stack.put(SOURCE + ".reframe.json", THREE)

    result = stack.invoke(sqs_event(s3_event(SOURCE)), timeout_s=11.5)

    assert result == {"batchItemFailures": [{"itemIdentifier": "m-0"}]}
    first = stack.read_json(OUT + "manifest.json")["variants"]
    created = [v["name"] for v in first if v["status"] == "created"]
    deferred = [v for v in first if v["status"] == "failed"]
    assert created and deferred
    assert {v["error"]["code"] for v in deferred} == {"deadline"}  # not started: nothing paid for it

    assert stack.invoke(sqs_event(s3_event(SOURCE))) == {"batchItemFailures": []}
    second = {v["name"]: v["status"] for v in stack.read_json(OUT + "manifest.json")["variants"]}
    assert all(second[name] == "existing" for name in created)
    assert set(second.values()) <= {"existing", "created"}
    assert stack.stats()["billed"] == 3  # nothing paid twice


def test_the_key_appears_nowhere(stack: Stack, logs: io.StringIO, capsys: pytest.CaptureFixture[str]):
    logger.setLevel("DEBUG")
    try:
        stack.put_image(SOURCE)
        stack.put(SOURCE + ".reframe.json", THREE)
        stack.faults("429", "500", "401", "400", "406", "garbage")
        results = [stack.invoke(sqs_event(s3_event(SOURCE))) for _ in range(3)]
        stack.configure(SEGMIND_API_KEY="sk-wrong-SECRET-999")
        results.append(stack.invoke(sqs_event(s3_event(SOURCE + ".reframe.json"))))
    finally:
        logger.setLevel("INFO")
    manifest = stack.s3.get_object(Bucket="reframe-test", Key=OUT + "manifest.json")["Body"].read().decode()
    printed = capsys.readouterr()
    everything = logs.getvalue() + printed.out + printed.err + manifest + json.dumps(results)

    assert "provider call failed, retrying" in everything  # the logs were captured
    assert "AccountErrors" in everything  # ...and the EMF metrics
    assert EMULATOR_API_KEY not in everything
    assert "sk-wrong-SECRET-999" not in everything


def test_daily_budget_refuses_work_over_it(stack: Stack, aws_env: str, logs: io.StringIO):
    dynamodb = servers.client("dynamodb", aws_env)
    create_idempotency_table(dynamodb)
    # Segmind DEFAULT is estimated at $0.075: two variants fit in $0.16, the third does not.
    stack.configure(IDEMPOTENCY_TABLE=TABLE, DAILY_BUDGET_USD="0.16", MAX_PARALLEL_CALLS="1")
    stack.faults("ok", "429")  # refused before any generation: its reservation is given back before the retry
    stack.put_image(SOURCE)
    stack.put(SOURCE + ".reframe.json", THREE)

    result = stack.invoke(sqs_event(s3_event(SOURCE)))

    variants = stack.read_json(OUT + "manifest.json")["variants"]
    assert [v["status"] for v in variants] == ["created", "created", "failed"]
    assert variants[2]["error"]["code"] == "budget_exceeded"
    assert "DAILY_BUDGET_USD" in variants[2]["error"]["message"]
    assert result == {"batchItemFailures": []}  # refused, recorded, not retried in a loop
    assert stack.stats()["billed"] == 2
    budget = [item for item in dynamodb.scan(TableName=TABLE)["Items"] if item["id"]["S"].startswith("budget#")]
    assert [item["spent_usd"]["N"] for item in budget] == ["0.150"]
    assert "variant failed" in logs.getvalue()


def test_an_attempt_that_may_have_been_billed_keeps_its_reservation(stack: Stack, aws_env: str):
    dynamodb = servers.client("dynamodb", aws_env)
    create_idempotency_table(dynamodb)
    # Room for two attempts: the 500 may have been billed, so the retry is the last one that fits.
    stack.configure(IDEMPOTENCY_TABLE=TABLE, DAILY_BUDGET_USD="0.16", MAX_PARALLEL_CALLS="1")
    stack.faults("500")
    stack.put_image(SOURCE)
    stack.put(SOURCE + ".reframe.json", THREE)

    stack.invoke(sqs_event(s3_event(SOURCE)))

    variants = stack.read_json(OUT + "manifest.json")["variants"]
    assert [v["status"] for v in variants] == ["created", "failed", "failed"]
    assert variants[0]["cost_usd"] == 0.15  # the 500 and the success are both counted
    budget = [item for item in dynamodb.scan(TableName=TABLE)["Items"] if item["id"]["S"].startswith("budget#")]
    assert [item["spent_usd"]["N"] for item in budget] == ["0.150"]


def test_a_variant_deleted_by_hand_is_made_again(stack: Stack, aws_env: str):
    create_idempotency_table(servers.client("dynamodb", aws_env))
    stack.configure(IDEMPOTENCY_TABLE=TABLE)
    stack.put_image(SOURCE)
    stack.put(SOURCE + ".reframe.json", THREE)
    stack.invoke(sqs_event(s3_event(SOURCE)))
    stack.s3.delete_object(Bucket="reframe-test", Key=OUT + "1024x1024.jpg")

    # The sidecar is uploaded again to get the missing variant back.
    assert stack.invoke(sqs_event(s3_event(SOURCE + ".reframe.json"))) == {"batchItemFailures": []}

    statuses = {v["name"]: v["status"] for v in stack.read_json(OUT + "manifest.json")["variants"]}
    assert statuses == {"1024x1024": "created", "1312x736": "existing", "300x200": "existing"}
    assert stack.image(OUT + "1024x1024.jpg").size == (1024, 1024)
    # Collected again from the result the provider still holds (its ticket is journaled): nothing paid.
    assert stack.stats()["billed"] == 3
