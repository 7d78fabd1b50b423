"""What a run removes: obsolete outputs, pruned targets, and a deleted source's folder; never what it must keep. In-memory ports only (tests/unit/fakes.py and orchestration_harness.py)."""

from __future__ import annotations

from typing import Any

from reframe_pipeline.application.generations import GENERATION_PREFIX
from reframe_pipeline.domain.errors import (
    ProviderRejectedError,
)
from tests.unit.fakes import FakeProvider, solid_png
from tests.unit.orchestration_harness import MANIFEST, OUT, SOURCE, TARGETS


def test_prune_removes_a_target_gone_from_the_config(make: Any) -> None:
    h = make()
    h.upload(targets=TARGETS[:2])
    h.handle()
    h.sidecar(targets=TARGETS[:1])  # without prune: the old variant stays
    h.handle()
    assert OUT + "512x1536.png" in h.storage.keys(OUT)
    assert len(h.generations()) == 2
    h.sidecar(targets=TARGETS[:1], prune=True)
    h.handle()
    assert h.outputs() == [OUT + "1536x512.png", MANIFEST]
    kept = h.storage.head(OUT + "1536x512.png")
    assert kept is not None
    # The generation of the remaining target stays; the removed target's goes with it.
    assert h.generations() == [f"{OUT}{GENERATION_PREFIX}{kept.metadata['generation']}.png"]
    assert h.provider.calls == 2


def test_a_variant_rewritten_under_another_extension_replaces_the_old_one(make: Any) -> None:
    h = make()
    h.upload(targets=TARGETS[:1])
    h.handle()
    h.sidecar(targets=TARGETS[:1], output={"format": "jpeg", "quality": 80})
    outcome = h.handle()
    assert [r.key for r in outcome.records] == [OUT + "1536x512.jpg"]
    assert h.outputs() == [OUT + "1536x512.jpg", MANIFEST]
    assert h.provider.calls == 1  # a new format only: rendered from the kept generation
    assert (outcome.records[0].rendered_from_generation, outcome.records[0].cost_usd) == (True, 0.0)
    assert h.storage.body(OUT + "1536x512.jpg").startswith(b"\xff\xd8\xff")


def test_a_failed_variant_keeps_what_the_folder_holds(make: Any) -> None:
    h = make(provider=FakeProvider([None, ProviderRejectedError("refused", status=400, billed=False)]))
    h.upload(targets=TARGETS[:1])
    h.handle()
    h.sidecar(targets=TARGETS[:1], output={"format": "jpeg"}, seed=7, prune=True)
    outcome = h.handle()
    assert [r.status for r in outcome.records] == ["failed"]
    assert len(h.generations()) == 1  # the one the failed target may still need: not pruned
    assert OUT + "1536x512.png" in h.storage.keys(OUT)  # another invocation may have just written it


def test_stale_removal_never_touches_a_nested_folder(make: Any) -> None:
    # 'uploads/shoot' and 'uploads/shoot/cover.png' are both legal keys: the second's outputs lie in a
    # folder inside the first's.
    h = make()
    h.upload("uploads/shoot/cover.png", targets=TARGETS[:1])
    h.handle("uploads/shoot/cover.png")
    nested = h.storage.keys("reframed/shoot/cover.png/")
    assert h.outputs("reframed/shoot/cover.png/") == [
        "reframed/shoot/cover.png/1536x512.png",
        "reframed/shoot/cover.png/manifest.json",
    ]
    h.upload("uploads/shoot", targets=TARGETS[:1], prune=True)
    h.handle("uploads/shoot")
    h.sidecar("uploads/shoot", targets=TARGETS[1:2], prune=True)
    h.handle("uploads/shoot")
    shoot = [key for key in h.storage.keys("reframed/shoot/") if key not in nested]
    assert [key for key in shoot if GENERATION_PREFIX not in key] == [
        "reframed/shoot/512x1536.png",
        "reframed/shoot/manifest.json",
    ]
    assert set(nested) <= set(h.storage.keys("reframed/shoot/"))
    h.storage.delete(["uploads/shoot"])
    assert h.handle("uploads/shoot", action="removed").action == "removed"
    assert h.storage.keys("reframed/shoot/") == nested


def test_a_delete_removes_the_outputs(make: Any) -> None:
    h = make()
    h.upload(targets=TARGETS[:2])
    h.handle()
    h.storage.delete([SOURCE])
    outcome = h.handle(action="removed")
    assert (outcome.action, outcome.detail) == ("removed", "5 objects deleted")  # 2 generations kept too
    assert h.storage.keys(OUT) == []


def test_a_late_delete_notification_after_a_re_upload_keeps_the_fresh_outputs(make: Any) -> None:
    h = make()
    h.upload(targets=TARGETS[:1])
    h.handle()
    h.storage.delete([SOURCE])
    h.upload(body=solid_png(64, 50))  # re-uploaded before the delete's event arrived
    h.handle()
    outcome = h.handle(action="removed")
    assert outcome.action == "ignored"
    assert h.outputs() == [OUT + "1536x512.png", MANIFEST]


def test_removing_a_sidecar_keeps_the_variants(make: Any) -> None:
    h = make()
    h.upload(targets=TARGETS[:1])
    h.handle()
    h.storage.delete([SOURCE + ".reframe.json"])
    assert h.handle(SOURCE + ".reframe.json", action="removed").action == "ignored"
    assert h.outputs() == [OUT + "1536x512.png", MANIFEST]
