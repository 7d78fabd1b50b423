"""Generations paid for earlier: collected with their tickets instead of paid again, at their price. In-memory ports only (tests/unit/fakes.py and orchestration_harness.py)."""

from __future__ import annotations

import time
from typing import Any

import pytest

from reframe_pipeline.application.pipeline import RetryLaterError
from reframe_pipeline.application.values import ReframeRequest, Ticket
from reframe_pipeline.domain.errors import (
    ProviderTransientError,
)
from tests.unit.fakes import FakeProvider, MemoryBudget
from tests.unit.orchestration_harness import PRICE, TARGETS


def test_a_paid_generation_is_resumed_only_for_the_same_parameters(make: Any) -> None:
    ticket = Ticket(provider="segmind", result_url="https://result.example/1", expires_at=4e9)

    def submitted_then_lost(request: ReframeRequest) -> None:
        request.meter.submitted(ticket)
        raise ProviderTransientError("connection lost while waiting", code="network")

    h = make(provider=FakeProvider([submitted_then_lost]))
    h.upload(targets=TARGETS[:1], seed=100)
    with pytest.raises(RetryLaterError):
        h.handle()
    h.handle()  # the same work: the ticket is handed back
    h.sidecar(targets=TARGETS[:1], seed=200)
    h.handle()  # other parameters: other work, nothing to resume
    assert [r.resume for r in h.provider.requests] == [None, ticket, None]


def test_a_ticket_is_alive_while_it_can_still_be_collected() -> None:
    now = time.time()
    assert Ticket("segmind", "u", expires_at=now + 300).alive()
    assert not Ticket("segmind", "u", expires_at=now + 60).alive()
    assert Ticket("segmind", "u", expires_at=now + 60).alive(margin_s=10)


def test_the_journal_follows_each_variant_to_written(make: Any) -> None:
    h = make()
    h.upload(targets=TARGETS[:1])
    h.handle()
    assert list(h.journal.states.values()) == ["written"]


def test_a_collected_generation_is_reported_at_its_price(make: Any) -> None:
    ticket = Ticket(provider="segmind", result_url="https://result.example/1", expires_at=4e9)

    def submitted_then_lost(request: ReframeRequest) -> None:
        request.meter.submitted(ticket)
        raise ProviderTransientError("connection lost while waiting", code="network")

    budget = MemoryBudget(limit=1.0)
    h = make(provider=FakeProvider([submitted_then_lost]), budget=budget)
    h.upload(targets=TARGETS[:1], seed=4321)
    with pytest.raises(RetryLaterError):
        h.handle()
    failed = h.manifest()["variants"][0]
    assert (failed["attempts"], failed["cost_usd"], failed["seed"]) == (1, PRICE, 4321)
    record = h.handle().records[0]
    assert (record.status, record.attempts, record.cost_usd) == ("created", 0, PRICE)
    assert budget.spent == pytest.approx(PRICE)


def test_a_ticket_that_had_to_be_paid_again_is_counted_once(make: Any) -> None:
    ticket = Ticket(provider="segmind", result_url="https://result.example/1", expires_at=4e9)

    def submitted_then_lost(request: ReframeRequest) -> None:
        request.meter.submitted(ticket)
        raise ProviderTransientError("connection lost while waiting", code="network")

    def expired_so_generated_again(request: ReframeRequest) -> None:
        request.meter.charge()

    h = make(provider=FakeProvider([submitted_then_lost, expired_so_generated_again]))
    h.upload(targets=TARGETS[:1])
    with pytest.raises(RetryLaterError):
        h.handle()
    record = h.handle().records[0]
    assert h.provider.requests[1].resume == ticket
    assert (record.attempts, record.cost_usd) == (1, PRICE)
