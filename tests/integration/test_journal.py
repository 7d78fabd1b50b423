"""The journal over moto's DynamoDB, and the process-local one: a ticket held is loaded back, and a ticket
dropped (``hold(work, None)``: the attempt is known to have sent nothing collectable) is gone, so a
redelivery pays for a new generation instead of collecting a result that does not exist."""

from __future__ import annotations

import time
from typing import Any

import pytest

from reframe_local import servers
from reframe_pipeline.adapters.journal import DynamoDBJournal, MemoryJournal
from reframe_pipeline.application.ports import Ticket

from .test_reliability import TABLE, create_idempotency_table

TICKET = Ticket(provider="segmind", result_url="http://127.0.0.1:9/r/1", expires_at=time.time() + 3600, seed=7)


@pytest.fixture(params=["dynamodb", "memory"])
def journal(request: pytest.FixtureRequest, aws_env: str, moto_reset: Any) -> DynamoDBJournal | MemoryJournal:
    if request.param == "memory":
        return MemoryJournal()
    client = servers.client("dynamodb", aws_env)
    create_idempotency_table(client)
    return DynamoDBJournal(TABLE, client)


def test_a_held_ticket_is_loaded_back(journal: DynamoDBJournal | MemoryJournal):
    journal.hold("work-1", TICKET)
    assert journal.load("work-1") == TICKET
    assert journal.load("work-2") is None


def test_a_ticket_dropped_is_gone_and_the_work_stays_reserved(journal: DynamoDBJournal | MemoryJournal):
    journal.hold("work-1", TICKET)
    journal.hold("work-1", None)
    assert journal.load("work-1") is None
    journal.advance("work-1", "written")  # the state moves on without bringing a ticket back
    assert journal.load("work-1") is None
