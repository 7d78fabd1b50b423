"""Kept generations: shared by the targets that render them, tagged for their lifecycle rule, read once. In-memory ports only (tests/unit/fakes.py and orchestration_harness.py)."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from reframe_pipeline.application.generations import GENERATION_PREFIX
from reframe_pipeline.application.pipeline import RetryLaterError
from tests.unit.fakes import MemoryStorage, S3LimitError
from tests.unit.orchestration_harness import OUT, PRICE, TARGETS


def test_targets_sharing_a_generation_pay_for_it_once_in_the_same_run(make: Any) -> None:
    h = make()  # four calls in flight: the two renditions run at the same time
    h.upload(targets=[{"size": "320x240", "name": "small"}, {"size": "640x480", "name": "large"}])
    outcome = h.handle()
    assert h.provider.calls == 1
    by_name = {r.name: r for r in outcome.records}
    assert {r.status for r in by_name.values()} == {"created"}
    assert by_name["small"].generation == by_name["large"].generation
    assert sorted(r.rendered_from_generation for r in by_name.values()) == [False, True]
    assert sum(r.cost_usd for r in by_name.values()) == PRICE


class _GenerationsRefused(MemoryStorage):
    def write(self, key: str, body: bytes, content_type: str, metadata: dict[str, str], **options: Any) -> None:
        if GENERATION_PREFIX in key:
            raise S3LimitError("AccessDenied")
        super().write(key, body, content_type, metadata, **options)


def test_a_generation_that_cannot_be_kept_still_makes_its_variant(make: Any) -> None:
    h = make(storage=_GenerationsRefused())
    h.upload(targets=TARGETS[:1])
    (record,) = h.handle().records
    assert (record.status, record.generation_key) == ("created", None)
    assert h.generations() == []
    h.sidecar(targets=TARGETS[:1], output={"format": "jpeg"})
    h.handle()
    assert h.provider.calls == 2  # nothing kept: the change of format pays


class _GenerationAfterItsVariant(MemoryStorage):
    """A generation's write that lands only once its variant's deliverable has been written (or refused,
    ``refuse``): done one after the other, the generation's write would give up first."""

    def __init__(self, refuse: bool = False) -> None:
        super().__init__()
        self.refuse = refuse
        self.variant_done = threading.Event()

    def write(
        self, key: str, body: bytes, content_type: str, metadata: dict[str, str], *tags: Any, **options: Any
    ) -> None:
        if GENERATION_PREFIX in key:
            if not self.variant_done.wait(timeout=5):
                raise S3LimitError("the generation's write waited for its variant in vain")
        elif key.startswith(OUT) and not key.endswith(".json"):
            self.variant_done.set()
            if self.refuse:
                raise S3LimitError("SlowDown")
        super().write(key, body, content_type, metadata, *tags, **options)


def test_a_new_generation_is_kept_while_its_variant_is_written(make: Any) -> None:
    h = make(storage=_GenerationAfterItsVariant())
    h.upload(targets=TARGETS[:1])
    (record,) = h.handle().records
    (kept,) = h.generations()
    assert (record.status, record.generation_key) == ("created", kept)  # landed before the record was made


def test_a_variant_whose_write_fails_leaves_its_generation_kept(make: Any) -> None:
    h = make(storage=_GenerationAfterItsVariant(refuse=True))
    h.upload(targets=TARGETS[:1])
    with pytest.raises(RetryLaterError):
        h.handle()
    assert list(h.statuses().values()) == ["failed"]
    assert len(h.generations()) == 1  # landed before the run ended
    h.storage.refuse = False
    (record,) = h.handle().records
    assert (record.status, record.rendered_from_generation, h.provider.calls) == ("created", True, 1)


def test_kept_generations_are_tagged_for_their_lifecycle_rule(make: Any) -> None:
    h = make()
    h.upload(targets=TARGETS[:1])
    h.handle()
    (kept,) = h.generations()
    assert h.storage.tags[kept] == {"reframe-kind": "generation"}
    assert h.storage.tags[OUT + "1536x512.png"] == {}


def test_renditions_of_one_kept_generation_read_it_once(make: Any) -> None:
    h = make()
    targets = [{"size": "320x240", "name": "small"}, {"size": "640x480", "name": "large"}]
    h.upload(targets=targets)
    h.handle()
    h.sidecar(targets=targets, output={"format": "jpeg"})  # both re-rendered from the kept generation
    h.storage.reads.clear()
    h.handle()
    (kept,) = h.generations()
    assert [key for key, _ in h.storage.reads].count(kept) == 1
    assert h.provider.calls == 1
