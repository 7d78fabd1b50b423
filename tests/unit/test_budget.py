"""Money: the daily budget, refunds of attempts that cost nothing, and what each paid variant counts and measures. In-memory ports only (tests/unit/fakes.py and orchestration_harness.py)."""

from __future__ import annotations

from typing import Any

import pytest

from reframe_pipeline.application import source_matching, variant_records
from reframe_pipeline.application import variants as variants_module
from reframe_pipeline.application.pipeline import RetryLaterError
from reframe_pipeline.domain.errors import (
    ProviderRejectedError,
    ProviderTransientError,
)
from tests.unit.fakes import FakeProvider, MemoryBudget
from tests.unit.orchestration_harness import PRICE, TARGETS


def test_the_budget_pays_for_two_variants_of_three(make: Any) -> None:
    budget = MemoryBudget(limit=2 * PRICE + PRICE / 2)
    h = make(budget=budget, max_parallel_calls=1)
    h.upload(targets=TARGETS)
    outcome = h.handle()  # a refusal is final for this event: no retry
    assert outcome.action == "processed"
    assert [r.status for r in outcome.records] == ["created", "created", "failed"]
    refused = outcome.records[2]
    assert refused.error is not None
    assert refused.error.code == "budget_exceeded"
    assert (refused.cost_usd, refused.attempts) == (0.0, 0)
    assert h.provider.calls == 2
    assert budget.spent == pytest.approx(2 * PRICE)
    assert h.statuses()["960x832"] == "failed"


def test_an_attempt_that_cost_nothing_is_refunded(make: Any) -> None:
    budget = MemoryBudget(limit=1.0)
    rejected = ProviderRejectedError("bad request", status=400, billed=False)
    h = make(budget=budget, provider=FakeProvider([rejected]))
    h.upload(targets=TARGETS[:1])
    outcome = h.handle()
    assert outcome.records[0].status == "failed"
    assert outcome.records[0].cost_usd == 0.0
    assert budget.spent == 0.0
    assert budget.refunds == budget.reservations
    assert len(budget.refunds) == 1


def test_an_attempt_that_may_have_cost_is_kept(make: Any) -> None:
    budget = MemoryBudget(limit=1.0)
    h = make(budget=budget, provider=FakeProvider([ProviderTransientError("lost", status=502, billed=True)]))
    h.upload(targets=TARGETS[:1])
    with pytest.raises(RetryLaterError):
        h.handle()
    assert budget.spent == pytest.approx(PRICE)
    assert budget.refunds == []
    assert h.manifest()["variants"][0]["cost_usd"] == pytest.approx(PRICE)


def test_every_paid_attempt_is_counted(make: Any) -> None:
    budget = MemoryBudget(limit=1.0)
    h = make(budget=budget, provider=FakeProvider([lambda request: request.meter.charge()]))  # one retry inside
    h.upload(targets=TARGETS[:1])
    record = h.handle().records[0]
    assert (record.attempts, record.cost_usd) == (2, pytest.approx(2 * PRICE))
    assert budget.spent == pytest.approx(2 * PRICE)


def test_each_paid_variant_is_measured_as_the_readme_lists(make: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    measured: list[tuple[str, float, object]] = []
    for module in (variants_module, variant_records, source_matching):
        monkeypatch.setattr(module, "measure", lambda name, value, unit: measured.append((name, value, unit)))
    h = make()
    h.upload(targets=TARGETS[:1])
    outcome = h.handle()

    (record,) = outcome.records
    by_name = {name: (value, unit) for name, value, unit in measured}
    assert sorted(by_name) == ["BytesWritten", "EstimatedCostUSD", "ProviderLatency", "SourceCheckTime"]
    assert by_name["SourceCheckTime"][1] == variants_module.MetricUnit.Milliseconds
    assert by_name["BytesWritten"] == (len(h.storage.body(record.key)), variants_module.MetricUnit.Bytes)
    assert by_name["EstimatedCostUSD"] == (pytest.approx(record.cost_usd), variants_module.MetricUnit.NoUnit)
    assert by_name["ProviderLatency"][1] == variants_module.MetricUnit.Milliseconds
