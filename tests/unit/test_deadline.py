"""Time: the invocation's deadline, latencies, and the provider-call pool. In-memory ports only (tests/unit/fakes.py and orchestration_harness.py)."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from reframe_pipeline.application import variant_records
from reframe_pipeline.application import variants as variants_module
from reframe_pipeline.application.deadline import Deadline
from reframe_pipeline.application.pipeline import RetryLaterError
from reframe_pipeline.domain.errors import (
    ProviderRejectedError,
)
from tests.unit.fakes import FakeProvider
from tests.unit.orchestration_harness import TARGETS


def test_too_little_time_left_defers_every_variant_without_a_call(make: Any) -> None:
    h = make()
    h.upload(targets=TARGETS[:2])
    needed = h.settings.call_budget_ms + h.settings.upload_reserve_ms
    h.clock.remaining_ms = needed - 1
    with pytest.raises(RetryLaterError):
        h.handle()
    assert h.provider.calls == 0
    assert h.statuses() == {"1536x512": "failed", "512x1536": "failed"}
    assert {v["error"]["code"] for v in h.manifest()["variants"]} == {"deadline"}
    h.clock.remaining_ms = needed  # just enough: called
    assert [r.status for r in h.handle().records] == ["created", "created"]


def test_a_deadline_reads_the_lambda_context_or_counts_down_on_its_own() -> None:
    class Context:
        def get_remaining_time_in_millis(self) -> int:
            return 1234

    assert Deadline.from_context(Context()).remaining_ms() == 1234
    assert 899_000 < Deadline.from_context(object()).remaining_ms() <= 900_000
    assert 4_990 < Deadline(budget_ms=5_000).remaining_ms() <= 5_000


class _Ticking:
    """time.monotonic advancing a second per call: latencies without waiting."""

    def __init__(self) -> None:
        self.now = 0.0

    def monotonic(self) -> float:
        self.now += 1.0
        return self.now


def test_latencies_are_in_milliseconds(make: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    ticking = _Ticking()
    for module in (variants_module, variant_records):
        monkeypatch.setattr(module, "time", ticking)
    h = make(provider=FakeProvider([None, ProviderRejectedError("no", status=422)]), max_parallel_calls=1)
    h.upload(targets=TARGETS[:2])
    created, failed = h.handle().records
    assert (created.latency_ms, failed.latency_ms) == (1000, 1000)


def test_provider_calls_run_in_the_call_pool_of_max_parallel_calls_threads(make: Any) -> None:
    threads: list[str] = []
    h = make(max_parallel_calls=1)
    h.provider.during = lambda request: threads.append(threading.current_thread().name)
    h.upload(targets=TARGETS)
    h.handle()
    assert threads == ["reframe-call_0"] * 3  # MAX_PARALLEL_CALLS=1: one call at a time, on one thread
