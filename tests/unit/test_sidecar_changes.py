"""A sidecar changed while a run works: the newer sidecar wins, as a newer upload does. The slower run of an older
sidecar writes no manifest over the newer one, prunes nothing the newer one keeps, and leaves no orphan."""

from __future__ import annotations

import json
from typing import Any

import pytest

from reframe_pipeline.application.values import ReframeRequest
from tests.unit.fakes import FakeProvider
from tests.unit.orchestration_harness import MANIFEST, OUT, Harness

X = {"resolution": "1536x512", "name": "x"}
Y = {"resolution": "960x832", "name": "y"}
Z = {"resolution": "512x1536", "name": "z"}


@pytest.mark.parametrize("prune", [True, False])
def test_a_reverted_sidecar_wins_over_the_slower_run_of_the_change(make: Any, prune: bool) -> None:
    h: Harness = make()
    h.upload(targets=[X, Z], prune=prune)
    h.handle()  # steady state {x, z}
    kept = sorted(h.generations())

    def revert_and_finish_first(request: ReframeRequest) -> None:
        h.sidecar(targets=[X, Z], prune=prune)  # the user undoes the change while y is being made...
        h.handle(h.storage.keys("uploads/")[1])  # ...and that run, with nothing to pay, ends first

    h.provider = h.pipeline.fanout.producer.provider = FakeProvider([revert_and_finish_first])
    h.sidecar(targets=[X, Y], prune=prune)
    outcome = h.handle()  # the change's run, slow on y

    assert outcome.action == "superseded"
    assert [v["name"] for v in h.manifest()["variants"]] == ["x", "z"]  # the newer run's manifest stands
    assert h.outputs() == [MANIFEST, OUT + "x.png", OUT + "z.png"]  # z kept, y not left behind
    assert set(kept) <= set(h.generations())  # z's kept generation too


def test_a_folder_default_changed_meanwhile_applies_to_later_uploads_only(make: Any) -> None:
    h: Harness = make()
    h.upload()
    h.storage.put("uploads/_reframe.json", json.dumps({"version": 1, "targets": [X]}).encode())

    def change_the_default(request: ReframeRequest) -> None:
        h.storage.put("uploads/_reframe.json", json.dumps({"version": 1, "targets": [Z]}).encode())

    h.provider = h.pipeline.fanout.producer.provider = FakeProvider([change_the_default])
    outcome = h.handle()  # no event comes for this image with the new default: this run finishes its work

    assert outcome.action == "processed" and h.outputs() == [MANIFEST, OUT + "x.png"]
