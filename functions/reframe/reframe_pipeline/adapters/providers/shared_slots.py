"""A provider limit that holds across function instances: PROVIDER_MAX_IN_FLIGHT leases in the
idempotency table, one item per slot. A generation holds a slot from its request until its result is
collected. A lease expires with the invocation that took it, so an instance killed mid-call cannot hold
a slot forever. The per-process AIMD limiter still adapts to what the provider actually answers."""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from reframe_pipeline.application.deadline import Deadline
from reframe_pipeline.domain.errors import DeadlineError
from reframe_pipeline.observability import MetricUnit, count, logger, measure

_WAIT_FIRST_S, _WAIT_MAX_S = 0.05, 1.0
_BATCH_GET = 100  # DynamoDB's most keys per BatchGetItem
# A release botocore could not make (throttled through its own retries) is tried again this many times: a slot
# left leased stays busy for every instance until the invocation's deadline.
_RELEASE_ROUNDS, _RELEASE_WAIT_S = 4, 0.2


class SharedSlots:
    def __init__(self, table: str, provider: str, size: int, client: Any) -> None:
        self._table = table
        self._provider = provider
        self.size = size
        self._client = client

    @contextmanager
    def hold(self, deadline: Deadline, reserve_ms: int) -> Iterator[None]:
        """A slot for one generation, waited for (never past ``deadline`` less ``reserve_ms``: then a
        DeadlineError hands the record back to the queue), released when the block ends."""
        started = time.monotonic()
        slot, holder = self._acquire(deadline, reserve_ms)
        measure("SharedSlotWaitMs", (time.monotonic() - started) * 1000, MetricUnit.Milliseconds)
        try:
            yield
        finally:
            self._release(slot, holder)

    def _acquire(self, deadline: Deadline, reserve_ms: int) -> tuple[int, str]:
        holder = uuid.uuid4().hex
        wait_s = _WAIT_FIRST_S
        while True:
            # The lease lasts as long as this invocation may: a killed instance's slot comes free then.
            expires = int(time.time() * 1000) + max(0, deadline.remaining_ms())
            free = self._free()
            for slot in random.sample(free, len(free)):  # no slot is everyone's first try
                if self._take(slot, holder, expires):
                    return slot, holder
            if deadline.remaining_ms() - wait_s * 1000 < reserve_ms:
                count("SharedSlotTimeouts")
                raise DeadlineError(
                    f"all {self.size} {self._provider} slots (PROVIDER_MAX_IN_FLIGHT) stayed busy until the deadline"
                )
            time.sleep(random.uniform(0, wait_s))  # noqa: S311 - jitter, not cryptography
            wait_s = min(_WAIT_MAX_S, wait_s * 2)

    def _key(self, slot: int) -> dict[str, Any]:
        return {"id": {"S": f"slot#{self._provider}#{slot}"}}

    def _free(self) -> list[int]:
        """The slots that look free: one consistent read of them all per round, so a waiting call writes
        only where it may win (a conditional write per slot and round made waiting cost ~50 requests)."""
        now = int(time.time() * 1000)
        taken: set[int] = set()
        for start in range(0, self.size, _BATCH_GET):
            keys = [self._key(slot) for slot in range(start, min(self.size, start + _BATCH_GET))]
            answer = self._client.batch_get_item(
                RequestItems={
                    self._table: {"Keys": keys, "ConsistentRead": True, "ProjectionExpression": "id, lease_expires"}
                }
            )
            unread = answer.get("UnprocessedKeys", {}).get(self._table, {}).get("Keys", [])
            for item in [*answer.get("Responses", {}).get(self._table, []), *unread]:  # unread: as if busy
                lease = item.get("lease_expires", {}).get("N")
                if item in unread or (lease is not None and int(lease) >= now):
                    taken.add(int(item["id"]["S"].rsplit("#", 1)[1]))
        return [slot for slot in range(self.size) if slot not in taken]

    def _take(self, slot: int, holder: str, expires: int) -> bool:
        try:
            self._client.update_item(
                TableName=self._table,
                Key=self._key(slot),
                UpdateExpression="SET holder = :holder, lease_expires = :expires",
                ConditionExpression="attribute_not_exists(lease_expires) OR lease_expires < :now",
                ExpressionAttributeValues={
                    ":holder": {"S": holder},
                    ":expires": {"N": str(expires)},
                    ":now": {"N": str(int(time.time() * 1000))},
                },
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def _release(self, slot: int, holder: str) -> None:
        """The holder is done: the lease ends now, not at its expiry."""
        error: Exception | None = None
        for round_ in range(_RELEASE_ROUNDS):
            try:
                self._client.update_item(
                    TableName=self._table,
                    Key=self._key(slot),
                    UpdateExpression="REMOVE holder, lease_expires",
                    ConditionExpression="holder = :holder",
                    ExpressionAttributeValues={":holder": {"S": holder}},
                )
                return
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                    # Expired and taken by another meanwhile: theirs now.
                    logger.warning("shared slot lease was lost before release", extra={"error": str(exc)})
                    return
                error = exc
            except BotoCoreError as exc:
                error = exc
            if round_ + 1 < _RELEASE_ROUNDS:
                time.sleep(_RELEASE_WAIT_S * 2**round_)
        logger.warning("shared slot not released: it stays busy until its lease expires", extra={"error": str(error)})
        count("SharedSlotReleaseFailures")
