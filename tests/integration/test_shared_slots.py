"""PROVIDER_MAX_IN_FLIGHT: one limit for every instance, held in DynamoDB (moto's server), with leases
that expire with the invocation that took them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from reframe_local import servers
from reframe_pipeline.adapters.providers.shared_slots import SharedSlots, SlotTable
from reframe_pipeline.application.deadline import Deadline
from reframe_pipeline.domain.errors import DeadlineError

from ..waiting import wait_until
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


class Counting:
    """The DynamoDB client, counting the requests made through it by operation."""

    def __init__(self, client: Any) -> None:
        self.client, self.calls = client, dict[str, int]()

    def __getattr__(self, name: str) -> Any:
        def call(**kwargs: Any) -> Any:
            self.calls[name] = self.calls.get(name, 0) + 1
            return getattr(self.client, name)(**kwargs)

        return call


def test_a_waiting_call_reads_the_slots_and_writes_none_while_all_are_busy(dynamodb: Any):
    size = 4
    holders = SharedSlots(TABLE, "segmind", size, dynamodb)
    counting = Counting(dynamodb)
    waiter = SharedSlots(TABLE, "segmind", size, counting)
    held = [holders.hold(Deadline(lambda: 60_000), reserve_ms=0) for _ in range(size)]
    for lease in held:
        lease.__enter__()
    with pytest.raises(DeadlineError), waiter.hold(Deadline(budget_ms=1_500), reserve_ms=0):
        pass
    assert counting.calls.get("update_item", 0) == 0  # no conditional write it could not win
    assert counting.calls["batch_get_item"] >= 2  # it looked again while it waited
    for lease in held:
        lease.__exit__(None, None, None)
    with waiter.hold(Deadline(lambda: 60_000), reserve_ms=0):
        assert counting.calls["update_item"] == 1  # a free slot: taken at the first write


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
    wait_until(free, 10, "the dead lease to expire")


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


def test_a_call_that_raises_gives_its_slot_back(dynamodb: Any):
    slots = SharedSlots(TABLE, "segmind", 1, dynamodb)
    with pytest.raises(RuntimeError, match="provider blew up"), slots.hold(Deadline(lambda: 60_000), reserve_ms=0):
        raise RuntimeError("provider blew up")
    # The only slot is free at once: a holder with almost no time left still gets it.
    with slots.hold(Deadline(lambda: 300), reserve_ms=0):
        pass
    [slot] = [i for i in dynamodb.scan(TableName=TABLE)["Items"] if i["id"]["S"].startswith("slot#")]
    assert "lease_expires" not in slot


def test_a_finishing_call_hands_its_slot_to_a_waiting_call_of_its_process(dynamodb: Any):
    counting = Counting(dynamodb)
    slots = SharedSlots(TABLE, "segmind", 1, counting)
    first = slots.hold(Deadline(lambda: 60_000), reserve_ms=0)
    first.__enter__()
    second = slots.hold(Deadline(lambda: 60_000), reserve_ms=0)
    with ThreadPoolExecutor(1) as pool:
        entered = pool.submit(second.__enter__)
        # Found busy four times: it now waits 0.4 s and more between looks (not reading the table meanwhile).
        wait_until(lambda: counting.calls.get("batch_get_item", 0) >= 4, 10, "the second call to wait")
        first.__exit__(None, None, None)
        entered.result(timeout=10)
    # The first's lease was written over to the second (one write), not ended and then taken (two writes).
    assert counting.calls["update_item"] == 2
    item = dynamodb.get_item(TableName=TABLE, Key={"id": {"S": "slot#segmind#0"}}, ConsistentRead=True)["Item"]
    assert "holder" in item and int(item["expected_end"]["N"]) >= int(item["lease_expires"]["N"]) - 60_000
    second.__exit__(None, None, None)


class HeldWrites(Counting):
    """Counting, and each UpdateItem after the first waits until ``entered`` is set (or 5 s pass)."""

    def __init__(self, client: Any) -> None:
        super().__init__(client)
        self.entered = threading.Event()

    def __getattr__(self, name: str) -> Any:
        call = super().__getattr__(name)
        if name != "update_item":
            return call

        def held(**kwargs: Any) -> Any:
            if self.calls.get("update_item", 0) >= 1:
                self.entered.wait(5)
            return call(**kwargs)

        return held


def test_within_one_invocation_a_handed_slot_is_used_before_anything_is_written(dynamodb: Any):
    """Calls of one invocation share its lease's expiry: the next one goes at once under the lease, which then
    says when that call should end (it used to wait for the lease to be written over to it)."""
    writes = HeldWrites(dynamodb)
    slots = SharedSlots(TABLE, "segmind", 1, writes)
    invocation = Deadline(lambda: 60_000)
    first, second = slots.hold(invocation, reserve_ms=0), slots.hold(invocation, reserve_ms=0)
    first.__enter__()
    taken = dynamodb.get_item(TableName=TABLE, Key={"id": {"S": "slot#segmind#0"}}, ConsistentRead=True)["Item"]
    with ThreadPoolExecutor(2) as pool:
        entered = pool.submit(second.__enter__)
        # Found busy four times: it now waits 0.4 s and more between looks (not reading the table meanwhile).
        wait_until(lambda: writes.calls.get("batch_get_item", 0) >= 4, 10, "the second call to wait")
        released = pool.submit(first.__exit__, None, None, None)
        entered.result(timeout=3)  # before the handing call's write: it waits for this
        writes.entered.set()
        released.result(timeout=10)
    item = dynamodb.get_item(TableName=TABLE, Key={"id": {"S": "slot#segmind#0"}}, ConsistentRead=True)["Item"]
    assert (item["holder"], item["lease_expires"]) == (taken["holder"], taken["lease_expires"])  # the same lease
    assert writes.calls["update_item"] == 2  # taken, then its expected end: no lease written over
    second.__exit__(None, None, None)
    item = dynamodb.get_item(TableName=TABLE, Key={"id": {"S": "slot#segmind#0"}}, ConsistentRead=True)["Item"]
    assert "lease_expires" not in item  # the second call ended it: free for every instance


class HolderAroundTheLook(Counting):
    """Counting, around the waiter's first look at the slots: just before it, ``hold`` leases the slot to a holder
    in another instance (so its expected end is measured from the look, however slow the machine); just after
    it has answered (every slot busy), ``release`` ends that lease. The calls made after it are in ``after``."""

    def __init__(self, client: Any, hold: Any, release: Any) -> None:
        super().__init__(client)
        self.hold, self.release, self.after = hold, release, list[str]()

    def __getattr__(self, name: str) -> Any:
        call = super().__getattr__(name)

        def logged(**kwargs: Any) -> Any:
            if name == "batch_get_item" and name not in self.calls:  # the first look
                self.hold()
                answer = call(**kwargs)
                self.release()
                return answer
            self.after.append(name)
            return call(**kwargs)

        return logged


def test_a_slot_whose_holder_is_due_is_taken_without_another_look(dynamodb: Any):
    """A holder in another instance says it ends a second after the waiter's look, and is released right after
    that look. Once that end has passed, the waiter writes its lease at once: no second look before the write."""
    key = {"id": {"S": "slot#segmind#0"}}

    def hold() -> None:
        now_ms = int(time.time() * 1000)
        lease = {"lease_expires": {"N": str(now_ms + 60_000)}, "expected_end": {"N": str(now_ms + 1_000)}}
        dynamodb.put_item(TableName=TABLE, Item=key | {"holder": {"S": "another-instance"}} | lease)

    def release() -> None:
        SlotTable(TABLE, "segmind", 1, dynamodb).end(0, "another-instance")

    client = HolderAroundTheLook(dynamodb, hold, release)
    with SharedSlots(TABLE, "segmind", 1, client).hold(Deadline(lambda: 60_000), reserve_ms=0):
        assert client.calls["batch_get_item"] == 1 and client.after == ["update_item"]  # written, no look first
        item = dynamodb.get_item(TableName=TABLE, Key=key, ConsistentRead=True)["Item"]
        assert item["holder"]["S"] != "another-instance"
