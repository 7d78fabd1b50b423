"""Which config applies (sidecar, folder default, DEFAULT_SIDECAR), invalid ones, and what each event's outcome says. In-memory ports only (tests/unit/fakes.py and orchestration_harness.py)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from reframe_pipeline.application.discovery import candidate_keys
from reframe_pipeline.domain.events import ObjectEvent
from tests.unit.fakes import solid_png
from tests.unit.orchestration_harness import SOURCE, TARGETS


def test_an_invalid_sidecar_fails_every_target_without_a_call(make: Any) -> None:
    h = make()
    h.upload(targets=["1536x512", {"resolution": "1x1", "name": "tiny"}])
    outcome = h.handle()
    assert outcome.action == "invalid"
    assert h.provider.calls == 0
    assert h.statuses() == {"1536x512": "failed", "tiny": "failed"}
    assert h.manifest()["error"]["code"] == "invalid_sidecar"


def test_a_folder_default_applies_and_the_nearest_wins(make: Any) -> None:
    h = make()
    h.upload("uploads/a/b/photo.png")
    h.storage.put("uploads/_reframe.json", json.dumps({"version": 1, "targets": [{"resolution": TARGETS[0]}]}).encode())
    h.storage.put(
        "uploads/a/_reframe.json", json.dumps({"version": 1, "targets": [{"resolution": TARGETS[1]}]}).encode()
    )
    outcome = h.handle("uploads/a/b/photo.png")
    assert [r.name for r in outcome.records] == [TARGETS[1]]
    assert h.manifest("reframed/a/b/photo.png/")["config"] == {"from": "folder", "key": "uploads/a/_reframe.json"}


def test_an_image_without_any_config_is_left_alone(make: Any) -> None:
    h = make()
    h.upload()
    assert h.handle().action == "unconfigured"
    assert h.storage.keys("reframed/") == []


@pytest.mark.parametrize(
    ("key", "action"),
    [("reframed/photo.png/x.png", "ignored"), ("other/photo.png", "ignored"), ("uploads/a//b.png", "invalid")],
)
def test_keys_that_are_not_inputs_are_ignored(make: Any, key: str, action: str) -> None:
    h = make()
    h.upload(key, targets=TARGETS[:1])
    assert h.handle(key).action == action
    assert h.provider.calls == 0


@pytest.mark.parametrize(
    ("targets", "names"),
    [
        ([{"resolution": "1x1", "name": "tiny"}, "oops", {"seed": 5}], ["tiny", "target-1", "target-2"]),
        ("not a list", ["*"]),
    ],
)
def test_an_invalid_sidecar_names_each_target_it_can(make: Any, targets: Any, names: list[str]) -> None:
    h = make()
    h.upload()
    h.storage.put(SOURCE + ".reframe.json", json.dumps({"version": 1, "targets": targets}).encode())
    outcome = h.handle()
    assert [r.name for r in outcome.records] == names
    assert {r.error.code for r in outcome.records if r.error} == {"invalid_sidecar"}


def test_a_sidecar_that_is_no_object_fails_as_one(make: Any) -> None:
    h = make()
    h.upload()
    h.storage.put(SOURCE + ".reframe.json", b'[{"targets": [{"name": "x"}]}]')
    assert [r.name for r in h.handle().records] == ["*"]


def test_events_carry_through_to_the_outcome(make: Any) -> None:
    h = make()
    h.upload(targets=TARGETS[:1])
    h.handle()
    event = ObjectEvent(bucket="bucket", key=SOURCE, action="removed")
    kept = h.pipeline.handle(event, h.clock.deadline())
    assert (kept.event, kept.action, kept.detail) == (event, "ignored", "source exists again")
    h.storage.delete([SOURCE])
    removed = h.pipeline.handle(event, h.clock.deadline())
    assert (removed.event, removed.action, removed.detail) == (event, "removed", "3 objects deleted")


def test_a_sidecar_is_read_one_byte_past_its_limit_only(make: Any) -> None:
    h = make(max_sidecar_bytes=1024)
    h.upload()
    document = json.dumps({"version": 1, "targets": [{"resolution": TARGETS[0]}]}).encode()
    h.storage.put(SOURCE + ".reframe.json", document + b" " * (1024 - len(document)))  # exactly at the limit
    assert h.handle().records[0].status == "created"
    h.storage.put(SOURCE + ".reframe.json", document + b" " * 2000)
    outcome = h.handle()
    assert outcome.detail == "sidecar is 1025 bytes, over the limit of 1024"
    assert set(first for key, first in h.storage.reads if key == SOURCE + ".reframe.json") == {1025}


def test_the_candidate_configs_run_from_the_object_to_the_input_root() -> None:
    assert candidate_keys("uploads/a/b/p.png", "uploads/") == [
        ("object", "uploads/a/b/p.png.reframe.json"),
        ("folder", "uploads/a/b/_reframe.json"),
        ("folder", "uploads/a/_reframe.json"),
        ("folder", "uploads/_reframe.json"),
    ]


def test_a_default_sidecar_applies_when_nothing_else_does(make: Any) -> None:
    h = make(default_sidecar=json.dumps({"version": 1, "targets": [{"resolution": TARGETS[0]}]}))
    h.upload()
    outcome = h.handle()
    assert [r.status for r in outcome.records] == ["created"]
    assert h.manifest()["config"] == {"from": "default", "key": None}


@pytest.mark.parametrize(
    ("key", "action", "detail"),
    [
        ("reframed/photo.png/x.png", "ignored", "output"),
        ("other/photo.png", "ignored", "outside-input"),
        ("uploads/a//b.png", "invalid", "the key has empty, '.' or '..' path segments"),
        ("uploads/./b.png", "invalid", "the key has empty, '.' or '..' path segments"),
        ("uploads/../b.png", "invalid", "the key has empty, '.' or '..' path segments"),
        ("uploads/_reframe.json", "ignored", "folder sidecar"),
    ],
)
def test_what_is_not_processed_says_why(make: Any, key: str, action: str, detail: str) -> None:
    h = make()
    h.upload(key, targets=TARGETS[:1])
    outcome = h.handle(key)
    assert (outcome.action, outcome.detail) == (action, detail)
    assert h.provider.calls == 0


def test_outcomes_say_what_happened(make: Any) -> None:
    h = make()
    h.sidecar(targets=TARGETS[:1])
    assert h.handle().detail == f"{SOURCE}: the source no longer exists"
    h.upload(targets=TARGETS[:1])
    h.storage.delete([SOURCE + ".reframe.json"])
    assert h.handle(SOURCE + ".reframe.json", action="removed").detail == "sidecar removed; variants kept"
    h.sidecar(targets=TARGETS[:1])
    h.provider.during = lambda request: h.storage.delete([SOURCE])
    assert h.handle().detail == f"{SOURCE}: deleted meanwhile"
    h.upload(targets=TARGETS[:1])
    h.provider.during = lambda request: h.storage.put(SOURCE, solid_png(64, 60))
    assert h.handle().detail == f"{SOURCE}: overwritten meanwhile"
