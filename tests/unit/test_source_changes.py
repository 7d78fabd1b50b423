"""The source changing while it is worked on: a newer upload or a delete wins. In-memory ports only (tests/unit/fakes.py and orchestration_harness.py)."""

from __future__ import annotations

from typing import Any

from tests.unit.fakes import solid_png
from tests.unit.orchestration_harness import OUT, SOURCE, TARGETS


def test_a_source_deleted_during_the_call_wins(make: Any) -> None:
    h = make()
    h.provider.during = lambda request: h.storage.delete([SOURCE])
    h.upload(targets=TARGETS[:2])
    outcome = h.handle()
    assert outcome.action == "missing"
    assert {r.error.code for r in outcome.records if r.error} == {"source_changed"}
    assert set(h.journal.states.values()) == {"generated"}  # paid for and made, never written
    assert h.storage.keys(OUT) == []  # nothing written, nothing left behind


def test_a_source_overwritten_during_the_call_wins(make: Any) -> None:
    h = make()
    newer = solid_png(64, 52)
    h.provider.during = lambda request: h.storage.put(SOURCE, newer)
    h.upload(targets=TARGETS[:2])
    outcome = h.handle()
    assert outcome.action == "superseded"
    assert {r.error.message for r in outcome.records if r.error} == {
        "the source was overwritten or deleted meanwhile: result not written"
    }
    assert [r.status for r in outcome.records] == ["failed", "failed"]
    assert h.storage.keys(OUT) == []  # the newer upload's event owns the folder
    assert h.storage.body(SOURCE) == newer


def test_a_source_gone_before_the_event_is_handled_costs_nothing(make: Any) -> None:
    h = make()
    h.sidecar(targets=TARGETS[:1])
    assert h.handle().action == "missing"
    assert h.provider.calls == 0
    assert h.storage.keys("reframed/") == []
