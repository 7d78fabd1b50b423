"""Paid bytes S3 would not take: a generation answered as bytes (no ticket to collect again) is held by the process
until the bucket keeps it, so the redelivery renders it instead of paying again, and says what it cost."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from botocore.exceptions import ClientError

from reframe_pipeline.application.held_generations import HeldGeneration, HeldGenerations
from reframe_pipeline.application.pipeline import RetryLaterError
from reframe_pipeline.application.values import ReframeResult
from tests.unit.fakes import MemoryBudget, MemoryStorage
from tests.unit.orchestration_harness import MANIFEST, OUT, PRICE, TARGETS


class SlowingDownStorage(MemoryStorage):
    """A bucket whose writes of the keys ``refused`` picks S3 refuses with SlowDown (past botocore's retries)."""

    refused: Callable[[str], bool] | None = None

    def write(
        self, key: str, body: bytes, content_type: str, metadata: dict[str, str], *args: Any, **kwargs: Any
    ) -> None:
        if self.refused is not None and self.refused(key):
            error = {"Error": {"Code": "SlowDown", "Message": "Please reduce your request rate."}}
            raise ClientError(error, "PutObject")  # type: ignore[arg-type]
        super().write(key, body, content_type, metadata, *args, **kwargs)


@pytest.mark.parametrize("manifest_too", [True, False])
def test_a_generation_s3_refused_is_rendered_by_the_redelivery_not_paid_again(make: Any, manifest_too: bool) -> None:
    storage, budget = SlowingDownStorage(), MemoryBudget(limit=1.0)
    h = make(storage=storage, budget=budget)
    h.upload(targets=TARGETS[:1])
    storage.refused = lambda key: key.startswith(OUT) and (manifest_too or key != MANIFEST)

    # Either way the record goes back to the queue: the variant failed (or even its manifest).
    with pytest.raises(ClientError if manifest_too else RetryLaterError):
        h.handle()
    assert h.generations() == [] and h.provider.calls == 1
    storage.refused = None
    (record,) = h.handle().records

    assert record.status == "created" and h.provider.calls == 1 and budget.spent == pytest.approx(PRICE)
    assert record.cost_usd == pytest.approx(PRICE)  # paid for by the first receive, as the manifest says
    assert len(h.generations()) == 1  # kept now


def test_a_rendition_refused_is_rendered_from_the_held_generation_after_another_was_written(make: Any) -> None:
    storage = SlowingDownStorage()
    h = make(storage=storage)
    # Two renditions of one generation: the generation and the second rendition are refused, the first is written.
    h.upload(targets=[TARGETS[0], {"size": "768x256", "name": "b"}])
    storage.refused = lambda key: key.startswith((OUT + "_", OUT + "b."))
    with pytest.raises(RetryLaterError):
        h.handle()
    assert h.statuses() == {TARGETS[0]: "created", "b": "failed"}
    storage.refused = None

    h.handle()

    assert h.statuses() == {TARGETS[0]: "existing", "b": "created"} and h.provider.calls == 1


def test_a_process_holds_a_bounded_amount_the_oldest_going_first() -> None:
    held = HeldGenerations(max_bytes=10)
    for work_id in ("a", "b", "c"):
        held.hold(work_id, HeldGeneration(ReframeResult(body=b"x" * 4, content_type="image/png"), None, PRICE))
    assert [held.get(w) is not None for w in ("a", "b", "c")] == [False, True, True]
    held.drop("b")
    assert held.get("b") is None
