"""A sidecar changed while a run works: the newer sidecar wins, as a newer upload does. The slower run of an older
sidecar writes no manifest over the newer one, prunes nothing the newer one keeps, and leaves no orphan."""

from __future__ import annotations

import json
from typing import Any

import pytest

from reframe_pipeline.application.values import ReframeRequest
from reframe_pipeline.domain.errors import WriteConflictError
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


def _before_the_first_manifest_write(h: Harness, action: Any) -> None:
    """``action`` runs when this run is about to write its manifest, after its last look at the sidecar."""
    replace, pending = h.storage.replace, [action]

    def replace_after(key: str, body: bytes, content_type: str, etag: str | None) -> None:
        if key == MANIFEST and pending:
            pending.pop()()
        replace(key, body, content_type, etag)

    h.storage.replace = replace_after  # type: ignore[method-assign]


@pytest.mark.parametrize("prune", [True, False])
def test_a_revert_landing_just_before_the_manifest_write_still_wins(make: Any, prune: bool) -> None:
    h: Harness = make()
    h.upload(targets=[X, Z], prune=prune)
    h.handle()

    def revert_and_finish_first() -> None:
        h.sidecar(targets=[X, Z], prune=prune)
        h.handle(h.storage.keys("uploads/")[1])

    h.sidecar(targets=[X, Y], prune=prune)
    _before_the_first_manifest_write(h, revert_and_finish_first)
    outcome = h.handle()

    assert outcome.action == "superseded"  # its write found the newer manifest, then the newer sidecar
    assert [v["name"] for v in h.manifest()["variants"]] == ["x", "z"]
    assert h.outputs() == [MANIFEST, OUT + "x.png", OUT + "z.png"]


def test_a_duplicate_run_writing_first_is_built_over_not_overwritten_blindly(make: Any) -> None:
    h: Harness = make()
    h.upload(targets=[X, Y])
    other = {"source": {"bucket": "b", "key": "k", "etag": "e"}, "config": {"from": "object"}, "variants": []}
    _before_the_first_manifest_write(h, lambda: h.storage.put(MANIFEST, json.dumps(other).encode()))

    outcome = h.handle()

    assert outcome.action == "processed"
    assert sorted((v["name"], v["status"]) for v in h.manifest()["variants"]) == [("x", "created"), ("y", "created")]
    assert h.provider.calls == 2


def test_a_manifest_rewritten_by_every_other_run_fails_the_record_and_deletes_nothing(make: Any) -> None:
    h: Harness = make()
    h.upload(targets=[X, Z], prune=True)
    h.handle()
    h.sidecar(targets=[X, Y], prune=True)
    before = h.storage.body(MANIFEST)
    replace, others = h.storage.replace, []

    def always_first(key: str, body: bytes, content_type: str, etag: str | None) -> None:
        if key == MANIFEST:
            others.append(key)
            h.storage.put(MANIFEST, before + b" " * len(others))  # another run's manifest: a new ETag each time
        replace(key, body, content_type, etag)

    h.storage.replace = always_first  # type: ignore[method-assign]
    h.storage.deletes.clear()

    with pytest.raises(WriteConflictError):
        h.handle()

    assert len(others) == 3  # tried three times
    assert h.storage.deletes == []  # nothing pruned or unpublished: z stays, and its kept generation
    assert OUT + "z.png" in h.outputs()
