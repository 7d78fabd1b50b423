"""Upload order in the pipeline (docs/uploads.md): a new image without a sidecar of its own waits SIDECAR_WAIT_S
for one instead of being paid for with a folder default or DEFAULT_SIDECAR; a sidecar before its image waits for
the image; every variant file stays in the manifest, as `unconfigured` when no target makes it any more."""

from __future__ import annotations

import json
from typing import Any

import pytest

from reframe_pipeline.domain.errors import SidecarAwaitedError
from tests.unit.orchestration_harness import OUT, SOURCE, TARGETS

FOLDER_DEFAULT = {"version": 1, "targets": [{"resolution": TARGETS[0]}, {"resolution": TARGETS[1]}]}


def folder_default(h: Any) -> None:
    h.storage.put("uploads/_reframe.json", json.dumps(FOLDER_DEFAULT).encode())


def test_a_new_image_with_only_a_folder_default_waits_the_rest_of_the_wait(make: Any) -> None:
    h = make(sidecar_wait_s=10)
    folder_default(h)
    h.upload()

    with pytest.raises(SidecarAwaitedError) as waited:
        h.handle()

    assert waited.value.retry_after_s == 10  # uploaded a moment ago: the whole wait, in whole seconds
    assert waited.value.code == "waiting_for_sidecar"
    assert h.provider.calls == 0 and h.storage.keys("reframed/") == []


def test_default_sidecar_waits_too(make: Any) -> None:
    h = make(sidecar_wait_s=10, default_sidecar=json.dumps(FOLDER_DEFAULT))
    h.upload()
    with pytest.raises(SidecarAwaitedError):
        h.handle()
    assert h.provider.calls == 0


def test_once_the_wait_is_over_the_folder_default_applies(make: Any) -> None:
    h = make(sidecar_wait_s=10)
    folder_default(h)
    h.storage.age_s = 11  # uploaded 11 s ago
    h.upload()

    outcome = h.handle()

    assert outcome.action == "processed" and h.manifest()["config"]["from"] == "folder"
    assert h.provider.calls == 2


def test_an_image_with_its_own_sidecar_does_not_wait(make: Any) -> None:
    h = make(sidecar_wait_s=10)
    folder_default(h)
    h.upload(targets=TARGETS[:1])
    assert h.handle().action == "processed" and h.manifest()["config"]["from"] == "object"


def test_with_the_wait_off_the_folder_default_applies_at_once(make: Any) -> None:
    h = make(sidecar_wait_s=0)
    folder_default(h)
    h.upload()
    assert h.handle().action == "processed" and h.manifest()["config"]["from"] == "folder"


def test_an_image_without_any_configuration_does_not_wait(make: Any) -> None:
    h = make(sidecar_wait_s=10)
    h.upload()
    assert h.handle().action == "unconfigured"  # nothing would be paid: no reason to hold it


def test_a_sidecar_before_its_image_is_waiting_for_the_image(make: Any) -> None:
    h = make()
    h.sidecar()

    outcome = h.handle(SOURCE + ".reframe.json")

    assert (outcome.action, outcome.detail) == ("waiting", "waiting for the image")
    assert h.storage.keys("reframed/") == []


def test_an_image_deleted_before_its_event_is_still_missing(make: Any) -> None:
    assert make().handle().action == "missing"


def test_variant_files_no_target_makes_any_more_are_listed_until_pruned(make: Any) -> None:
    h = make()
    folder_default(h)
    h.upload()
    h.handle()  # the folder default's two variants
    h.sidecar(targets=[TARGETS[0]])  # keeps one of them

    records = h.handle(SOURCE + ".reframe.json").records

    assert [(r.name, r.status) for r in records] == [(TARGETS[0], "existing"), (TARGETS[1], "unconfigured")]
    listed = {v["key"]: v["status"] for v in h.manifest()["variants"]}
    assert sorted(listed) == [k for k in h.outputs() if not k.endswith("manifest.json") and "_prepared" not in k]
    assert listed[f"{OUT}{TARGETS[1]}.png"] == "unconfigured"

    h.sidecar(targets=[TARGETS[0]], prune=True)
    records = h.handle(SOURCE + ".reframe.json").records

    assert [(r.name, r.status) for r in records] == [(TARGETS[0], "existing")]
    assert f"{OUT}{TARGETS[1]}.png" not in h.storage.keys(OUT)
