"""A provider limit that holds across function instances: PROVIDER_MAX_IN_FLIGHT leases in the
idempotency table, one item per slot. A generation holds a slot from its request until its result is
collected. A lease expires with the invocation that took it, so an instance killed mid-call cannot hold
a slot forever; it also says when its holder expects to finish, which is when waiters look again
(``slot_waiting``). Within a process, waiting calls queue (``slot_queue``): the first looks at the table, and a
finishing call hands its slot to the next. The per-process AIMD limiter still adapts to what the provider
actually answers."""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from reframe_pipeline.adapters.providers.slot_queue import SlotQueue, Waiter
from reframe_pipeline.adapters.providers.slot_waiting import LONGEST_S, Due, TypicalHold, first_due, next_look_s
from reframe_pipeline.application.deadline import Deadline
from reframe_pipeline.domain.errors import DeadlineError
from reframe_pipeline.observability import MetricUnit, count, logger, measure

_BATCH_GET = 100  # DynamoDB's most keys per BatchGetItem
# A release botocore could not make (throttled through its own retries) is tried again this many times: a slot
# left leased stays busy for every instance until the invocation's deadline.
_RELEASE_ROUNDS, _RELEASE_WAIT_S = 4, 0.2


class SlotTable:
    """The slots' items in the table: read them all, write a lease, end one."""

    def __init__(self, table: str, provider: str, size: int, client: Any) -> None:
        self._table = table
        self._provider = provider
        self.size = size
        self._client = client

    def _key(self, slot: int) -> dict[str, Any]:
        return {"id": {"S": f"slot#{self._provider}#{slot}"}}

    def look(self) -> tuple[list[int], dict[int, int | None]]:
        """The slots that look free, and the busy ones with their holders' expected ends: one consistent read of
        them all per round, so a waiting call writes only where it may win (a conditional write per slot and
        round made waiting cost ~50 requests)."""
        now = _now_ms()
        taken: dict[int, int | None] = {}
        for start in range(0, self.size, _BATCH_GET):
            keys = [self._key(slot) for slot in range(start, min(self.size, start + _BATCH_GET))]
            read = {"Keys": keys, "ConsistentRead": True, "ProjectionExpression": "id, lease_expires, expected_end"}
            answer = self._client.batch_get_item(RequestItems={self._table: read})
            unread = answer.get("UnprocessedKeys", {}).get(self._table, {}).get("Keys", [])
            for item in [*answer.get("Responses", {}).get(self._table, []), *unread]:  # unread: as if busy
                lease = item.get("lease_expires", {}).get("N")
                if item in unread or (lease is not None and int(lease) >= now):
                    end = item.get("expected_end", {}).get("N")
                    taken[int(item["id"]["S"].rsplit("#", 1)[1])] = None if end is None else int(end)
        return [slot for slot in range(self.size) if slot not in taken], taken

    def take(self, slot: int, waiter: Waiter, expected_end: int | None) -> bool:
        free = "attribute_not_exists(lease_expires) OR lease_expires < :now"
        return self.lease(slot, waiter, expected_end, free, now=str(_now_ms()))

    def lease(self, slot: int, waiter: Waiter, expected_end: int | None, condition: str, **values: str) -> bool:
        """The slot's lease written for ``waiter`` if ``condition`` holds; False when it does not. ``values``:
        the condition's own, by name (a holder is a string, a time a number)."""
        update = "SET holder = :holder, lease_expires = :expires REMOVE expected_end"
        if expected_end is not None:
            update = "SET holder = :holder, lease_expires = :expires, expected_end = :end"
            values["end"] = str(expected_end)
        values |= {"holder": waiter.holder, "expires": str(waiter.expires_ms())}
        try:
            self._client.update_item(
                TableName=self._table,
                Key=self._key(slot),
                UpdateExpression=update,
                ConditionExpression=condition,
                ExpressionAttributeValues={
                    f":{name}": {"S" if name in ("holder", "giver") else "N": value} for name, value in values.items()
                },
            )
        except ClientError as exc:
            if _lost(exc):
                return False
            raise
        return True

    def expect(self, slot: int, holder: str, expected_end: int | None) -> None:
        """The lease of ``holder`` says when its (new) call should end; ClientError when it is not theirs."""
        self._client.update_item(
            TableName=self._table,
            Key=self._key(slot),
            UpdateExpression="SET expected_end = :end" if expected_end is not None else "REMOVE expected_end",
            ConditionExpression="holder = :holder",
            ExpressionAttributeValues={":holder": {"S": holder}}
            | ({":end": {"N": str(expected_end)}} if expected_end is not None else {}),
        )

    def end(self, slot: int, holder: str) -> None:
        """The lease of ``holder`` ended; ClientError (ConditionalCheckFailedException: it is not theirs)."""
        self._client.update_item(
            TableName=self._table,
            Key=self._key(slot),
            UpdateExpression="REMOVE holder, lease_expires, expected_end",
            ConditionExpression="holder = :holder",
            ExpressionAttributeValues={":holder": {"S": holder}},
        )


class SharedSlots:
    def __init__(self, table: str, provider: str, size: int, client: Any) -> None:
        self._provider = provider
        self.size = size
        self._table = SlotTable(table, provider, size, client)
        self._typical = TypicalHold()
        self._queue = SlotQueue()

    @contextmanager
    def hold(self, deadline: Deadline, reserve_ms: int) -> Iterator[None]:
        """A slot for one generation, waited for (never past ``deadline`` less ``reserve_ms``: then a
        DeadlineError hands the record back to the queue), released when the block ends."""
        started = time.monotonic()
        slot, holder = self._acquire(deadline, reserve_ms)
        measure("SharedSlotWaitMs", (time.monotonic() - started) * 1000, MetricUnit.Milliseconds)
        held = time.monotonic()
        try:
            yield
        finally:
            self._typical.observe(time.monotonic() - held)
            self._release(slot, holder, deadline)

    def _acquire(self, deadline: Deadline, reserve_ms: int) -> tuple[int, str]:
        # The lease lasts as long as this invocation may: a killed instance's slot comes free then.
        waiter = self._queue.join(uuid.uuid4().hex, lambda: _now_ms() + max(0, deadline.remaining_ms()), deadline)
        try:
            return self._wait_in_line(waiter, deadline, reserve_ms)
        except BaseException:
            self._abandon(waiter)
            raise

    def _wait_in_line(self, waiter: Waiter, deadline: Deadline, reserve_ms: int) -> tuple[int, str]:
        rounds, due = 0, None
        while waiter.slot is None:
            wait_s = LONGEST_S  # behind another waiter: woken when first, or when handed a slot
            if self._queue.start_looking(waiter):
                rounds += 1
                try:
                    slot, wait_s, due = self._look_and_take(waiter, rounds, due)
                finally:
                    self._queue.stop_looking(waiter)
                if slot is not None:
                    self._queue.took(waiter, slot)
                    return slot, waiter.holder
            if deadline.remaining_ms() - wait_s * 1000 < reserve_ms and self._queue.give_up(waiter):
                count("SharedSlotTimeouts")
                raise DeadlineError(
                    f"all {self.size} {self._provider} slots (PROVIDER_MAX_IN_FLIGHT) stayed busy until the deadline"
                )
            waiter.woken.wait(wait_s)
        return waiter.slot, waiter.holder

    def _look_and_take(self, waiter: Waiter, rounds: int, due: Due | None) -> tuple[int | None, float, Due | None]:
        """A free slot taken, or None, how long to wait before looking again and the slot due first then. The
        slot ``due`` first at the last look, once its holder's expected end has passed, is taken without a look
        (once): its release is likely written, and the look would cost a round trip before the write."""
        now = _now_ms()
        expected_end = self._typical.expected_end_ms(now)
        if due is not None and due.end_ms <= now and self._table.take(due.slot, waiter, expected_end):
            return due.slot, 0.0, None
        free, busy = self._table.look()
        for slot in random.sample(free, len(free)):  # no slot is everyone's first try
            if self._table.take(slot, waiter, expected_end):
                return slot, 0.0, None
        now = _now_ms()
        return None, next_look_s(now, busy.values(), rounds), first_due(now, busy)

    def _abandon(self, waiter: Waiter) -> None:
        """Out of the queue after a failure; a slot handed over meanwhile is given back."""
        while not self._queue.give_up(waiter):
            if waiter.slot is not None:
                self._release(waiter.slot, waiter.holder, waiter.invocation)
                return
            waiter.woken.wait(LONGEST_S)

    def _hand_over(self, slot: int, holder: str, invocation: object) -> bool:
        """The slot passed to this process's next waiting call, if any (the slot is never free); False when it
        must be released instead. Within one invocation the lease expires when the heir's would: the heir goes
        at once under it, and only then the lease says when the heir should end. Across invocations the lease
        is written over to the heir first (one write)."""
        heir = self._queue.heir(slot)
        if heir is None:
            return False
        expected_end = self._typical.expected_end_ms(_now_ms())
        if heir.invocation is invocation:
            heir.holder = holder
            self._queue.handed(heir, slot)
            try:
                self._table.expect(slot, holder, expected_end)
            except (ClientError, BotoCoreError) as exc:  # waiters from other instances look again sooner
                logger.debug("shared slot's expected end not written", extra={"error": str(exc)})
            return True
        try:
            handed = self._table.lease(slot, heir, expected_end, "holder = :giver", giver=holder)
        except (ClientError, BotoCoreError) as exc:  # throttled, say: released instead, with its retries
            logger.warning("shared slot not handed over: released instead", extra={"error": str(exc)})
            handed = False
        self._queue.handed(heir, slot if handed else None)
        return handed

    def _release(self, slot: int, holder: str, invocation: object) -> None:
        """The holder is done: the lease passes to the next waiting call of this process, or ends now, not at
        its expiry."""
        if self._hand_over(slot, holder, invocation):
            return
        error: Exception | None = None
        for round_ in range(_RELEASE_ROUNDS):
            try:
                self._table.end(slot, holder)
                return
            except ClientError as exc:
                if _lost(exc):
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


def _now_ms() -> int:
    return int(time.time() * 1000)


def _lost(exc: ClientError) -> bool:
    """The condition failed: the lease is not (or no longer) the writer's to take or to end."""
    return bool(exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException")
