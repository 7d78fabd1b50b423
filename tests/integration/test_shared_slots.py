"""PROVIDER_MAX_IN_FLIGHT: one limit for every instance, held in DynamoDB (moto's server), with leases
that expire with the invocation that took them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from reframe_local import servers
from reframe_local.moto_stack import wait_until
from reframe_pipeline.adapters.providers.shared_slots import SharedSlots
from reframe_pipeline.application.ports import Deadline
from reframe_pipeline.domain.errors import DeadlineError

from .conftest import Stack, s3_event, sqs_event
from .test_reliability import TABLE, create_idempotency_table

SIX = {
    "version": 1,
    "targets": [{"resolution": r} for r in ("1024x1024", "1536x640", "640x1536", "1344x768", "768x1344", "1152x896")],
}


@pytest.fixture
def dynamodb(stack: Stack, aws_env: str) -> Any:
    client = servers.client("dynamodb", aws_env)
    create_idempotency_table(client)
    return client


def test_a_slot_is_waited_for_and_given_back(dynamodb: Any):
    slots = SharedSlots(TABLE, "segmind", 1, dynamodb)
    # The only slot is taken: a second holder waits until its deadline, then gives up.
    with (
        slots.hold(Deadline(lambda: 60_000), reserve_ms=0),
        pytest.raises(DeadlineError, match="stayed busy"),
        slots.hold(Deadline(lambda: 300), reserve_ms=0),
    ):
        pass
    with slots.hold(Deadline(lambda: 60_000), reserve_ms=0):  # given back
        pass


def test_the_lease_of_an_instance_that_died_expires_with_its_deadline(dynamodb: Any):
    slots = SharedSlots(TABLE, "segmind", 1, dynamodb)
    dead = slots.hold(Deadline(lambda: 1_000), reserve_ms=0)
    dead.__enter__()  # taken, and never released: the instance was killed

    def free() -> bool:
        try:
            with slots.hold(Deadline(lambda: 200), reserve_ms=0):
                return True
        except DeadlineError:
            return False

    assert not free()
    assert wait_until(free, timeout_s=10)


def test_calls_in_flight_never_pass_the_shared_limit(stack: Stack, dynamodb: Any):
    stack.configure(IDEMPOTENCY_TABLE=TABLE, PROVIDER_MAX_IN_FLIGHT="2", MAX_PARALLEL_CALLS="8")
    stack.emulator_config(latency_ms=400)
    stack.put_image("uploads/slots/a.jpg")
    stack.put("uploads/slots/a.jpg.reframe.json", SIX)

    assert stack.invoke(sqs_event(s3_event("uploads/slots/a.jpg"))) == {"batchItemFailures": []}

    stats = stack.stats()
    assert stats["billed"] == 6
    assert stats["max_in_flight_seen"] <= 2 < 8


def invoke(event_file: Path) -> dict[str, Any]:
    command = [sys.executable, "-m", "reframe_cli.cli", "invoke", "--event", str(event_file)]
    done = subprocess.run(command, env=dict(os.environ), capture_output=True, text=True, timeout=180, check=True)
    return dict(json.loads(done.stdout))


def test_instances_share_the_limit_and_none_starves(stack: Stack, dynamodb: Any, tmp_path: Path):
    stack.configure(IDEMPOTENCY_TABLE=TABLE, PROVIDER_MAX_IN_FLIGHT="2", SEGMIND_API_MODE="sync")
    stack.emulator_config(latency_ms=300)
    files = []
    for name in ("a", "b", "c"):  # three instances, six generations each
        key = f"uploads/slots/{name}.jpg"
        stack.put_image(key)
        stack.put(key + ".reframe.json", SIX)
        files.append(tmp_path / f"{name}.json")
        files[-1].write_text(json.dumps(sqs_event(s3_event(key))))

    with ThreadPoolExecutor(3) as pool:
        results = list(pool.map(invoke, files))

    assert results == [{"batchItemFailures": []}] * 3  # every instance got its turn
    stats = stack.stats()
    assert stats["billed"] == 18
    assert stats["max_in_flight_seen"] <= 2
