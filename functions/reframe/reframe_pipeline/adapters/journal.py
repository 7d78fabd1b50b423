"""Adapters of the journal port: a process-local one, and one in the idempotency table (DynamoDB) that
survives the invocation, so a paid generation is collected, not paid for again, after a crash."""

from __future__ import annotations

import dataclasses
import json
import threading
import time
from typing import Any

from reframe_pipeline.application.values import Ticket

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
    """One item per piece of work, ``journal#<work id>``, beside Powertools' idempotency records."""

    def __init__(self, table: str, client: Any) -> None:
        self._table = table
        self._client = client

    def _key(self, work_id: str) -> dict[str, Any]:
        return {"id": {"S": f"journal#{work_id}"}}

    def load(self, work_id: str) -> Ticket | None:
        item = self._client.get_item(TableName=self._table, Key=self._key(work_id), ConsistentRead=True).get("Item")
        raw = (item or {}).get("ticket", {}).get("S")
        return Ticket(**json.loads(raw)) if raw else None

    def hold(self, work_id: str, ticket: Ticket | None) -> None:
        if ticket is None:
            self._update(work_id, "SET #state = :state, expiration = :exp REMOVE ticket", "reserved")
            return
        ticket_json = json.dumps(dataclasses.asdict(ticket))
        self._update(work_id, "SET #state = :state, expiration = :exp, ticket = :ticket", "submitted", ticket_json)

    def advance(self, work_id: str, state: str) -> None:
        self._update(work_id, "SET #state = :state, expiration = :exp", state)

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
