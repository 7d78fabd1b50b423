"""Adapters of the journal port: a process-local one, and one in the idempotency table (DynamoDB) that
survives the invocation, so a paid generation is collected, not paid for again, after a crash."""

from __future__ import annotations

import dataclasses
import json
import threading
import time
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from reframe_pipeline.application.values import Ticket
from reframe_pipeline.observability import count, logger

# Long enough for any redelivery of the record (SQS keeps messages at most 14 days).
KEEP_S = 15 * 24 * 3600


class MemoryJournal:
    """Without a table (local use): resumes within one process only."""

    def __init__(self) -> None:
        self._tickets: dict[str, Ticket | None] = {}
        self.states: dict[str, str] = {}
        self._lock = threading.Lock()

    def load(self, work_id: str) -> Ticket | None:
        with self._lock:
            return self._tickets.get(work_id)

    def hold(self, work_id: str, ticket: Ticket | None) -> None:
        with self._lock:
            self._tickets[work_id] = ticket
            self.states[work_id] = "submitted" if ticket else "reserved"

    def advance(self, work_id: str, state: str) -> None:
        with self._lock:
            self.states[work_id] = state


class DynamoDBJournal:
    """One item per piece of work, ``journal#<work id>``, beside Powertools' idempotency records.

    A ticket is a paid generation: one whose write fails (DynamoDB throttling past botocore's retries) is kept
    in the process, which goes on collecting it, and written with the next state of that work."""

    def __init__(self, table: str, client: Any) -> None:
        self._table = table
        self._client = client
        self._unwritten: dict[str, str] = {}  # work id -> ticket JSON not in the table yet
        self._lock = threading.Lock()

    def _key(self, work_id: str) -> dict[str, Any]:
        return {"id": {"S": f"journal#{work_id}"}}

    def load(self, work_id: str) -> Ticket | None:
        with self._lock:
            raw: str | None = self._unwritten.get(work_id)
        if raw is None:
            key = self._key(work_id)
            item = self._client.get_item(TableName=self._table, Key=key, ConsistentRead=True).get("Item")
            raw = (item or {}).get("ticket", {}).get("S")
        return Ticket(**json.loads(raw)) if raw else None

    def hold(self, work_id: str, ticket: Ticket | None) -> None:
        if ticket is None:
            with self._lock:
                self._unwritten.pop(work_id, None)
            self._update(work_id, "SET #state = :state, expiration = :exp REMOVE ticket", "reserved")
            return
        with self._lock:
            self._unwritten[work_id] = json.dumps(dataclasses.asdict(ticket))
        self._write(work_id, "submitted")

    def advance(self, work_id: str, state: str) -> None:
        """Progress (``generated``, ``written``), and a ticket not written yet. Never raised: a throttled write
        must not fail a variant that was made; it is logged and counted, and the ticket kept for the next."""
        self._write(work_id, state)

    def _write(self, work_id: str, state: str) -> None:
        with self._lock:
            ticket = self._unwritten.get(work_id)
        expression = "SET #state = :state, expiration = :exp" + (", ticket = :ticket" if ticket else "")
        try:
            self._update(work_id, expression, state, ticket)
        except (ClientError, BotoCoreError) as exc:
            logger.warning(
                "journal not written: kept in the process",
                extra={"state": state, "ticket_pending": ticket is not None, "error": str(exc)},
            )
            count("JournalWriteFailures")
            return
        if ticket is not None:
            with self._lock:
                if self._unwritten.get(work_id) == ticket:
                    del self._unwritten[work_id]

    def _update(self, work_id: str, expression: str, state: str, ticket: str | None = None) -> None:
        values = {":state": {"S": state}, ":exp": {"N": str(int(time.time()) + KEEP_S)}}
        if ticket is not None:
            values[":ticket"] = {"S": ticket}
        self._client.update_item(
            TableName=self._table,
            Key=self._key(work_id),
            UpdateExpression=expression,
            ExpressionAttributeNames={"#state": "state"},
            ExpressionAttributeValues=values,
        )
