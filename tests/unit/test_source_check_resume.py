"""SOURCE_CHECK=retry cut short: the second generation has its own journal entry, so the redelivery collects the
first and the second as what they are (never the second as a first, which would pay for a third), and the
manifest's cost counts both."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from reframe_pipeline.application.values import ReframeRequest, Ticket
from tests.unit.fakes import FakeProvider, MemoryBudget
from tests.unit.orchestration_harness import PRICE, TARGETS
from tests.unit.test_source_check_wiring import answers, faithful, make, repainted

__all__ = ["make"]  # the fixture, with the test picture uploaded


class Killed(BaseException):
    """The instance stops there (a timeout, a crash): nothing after it runs, nothing catches it."""


def ticket(n: int) -> Ticket:
    return Ticket(provider="segmind", result_url=f"https://result.example/{n}", expires_at=4e9)


def submitted(held: Ticket) -> Any:
    def step(request: ReframeRequest) -> None:
        request.meter.submitted(held)

    return step


def submitted_then_killed(held: Ticket) -> Any:
    def step(request: ReframeRequest) -> None:
        request.meter.submitted(held)
        raise Killed

    return step


def test_a_retry_cut_short_is_collected_as_the_retry_and_both_generations_are_counted(make: Any) -> None:
    budget = MemoryBudget(limit=10.0)
    # The first generation fails the check; its retry is paid and journaled, then the instance stops. Redelivered,
    # the first is collected (and fails the check again), then the retry (which passes).
    script = [submitted(ticket(1)), submitted_then_killed(ticket(2))]
    provider = FakeProvider(script, image=answers(repainted, repainted, faithful))
    h = make(provider=provider, source_check="retry", budget=budget)
    h.sidecar(targets=TARGETS[:1])
    with pytest.raises(Killed):
        h.handle()
    retry_seed = provider.requests[1].params.seed

    (record,) = h.handle().records

    first, retry = provider.requests[2:]
    assert (first.resume, retry.resume) == (ticket(1), replace(ticket(2), seed=retry_seed))
    assert retry.params.seed == retry_seed and record.seed == retry_seed  # the kept result is the retry's
    assert budget.spent == pytest.approx(2 * PRICE)  # two generations paid, never a third
    assert record.cost_usd == pytest.approx(2 * PRICE) and record.attempts == 0
    assert h.manifest()["variants"][0]["cost_usd"] == pytest.approx(2 * PRICE)
