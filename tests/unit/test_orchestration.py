"""The orchestration rules, with in-memory ports only (tests/unit/fakes.py): what is paid for, what is
written, kept and removed, and when a record goes back to SQS."""

from __future__ import annotations

import io
import json
import logging
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from PIL import Image

from reframe_pipeline.adapters.daily_budget import Unlimited
from reframe_pipeline.adapters.dynamodb_guard import NoGuard
from reframe_pipeline.adapters.journal import MemoryJournal
from reframe_pipeline.application import fanout
from reframe_pipeline.application import pipeline as pipeline_module
from reframe_pipeline.application import variants as variants_module
from reframe_pipeline.application.discovery import candidate_keys
from reframe_pipeline.application.generations import GENERATION_PREFIX, generation_id
from reframe_pipeline.application.outputs import PREPARED_NAME
from reframe_pipeline.application.pipeline import Outcome, Pipeline, RetryLaterError
from reframe_pipeline.application.ports import (
    Budget,
    Deadline,
    ObjectInfo,
    ReframeProvider,
    ReframeRequest,
    SourceImage,
    Ticket,
    VariantGuard,
    VariantWork,
)
from reframe_pipeline.application.variants import META_PARAMS, META_SOURCE_ETAG, META_SOURCE_KEY
from reframe_pipeline.domain.errors import (
    ProviderRejectedError,
    ProviderTransientError,
)
from reframe_pipeline.domain.events import ObjectEvent
from reframe_pipeline.domain.imaging import ImageCheckError
from reframe_pipeline.domain.manifest import VariantRecord
from reframe_pipeline.domain.planning import plan
from reframe_pipeline.domain.pricing import DEFAULT_PRICES
from reframe_pipeline.domain.sidecar import parse_sidecar
from reframe_pipeline.settings import Settings
from tests.unit.fakes import Clock, FakeProvider, MemoryBudget, MemoryStorage, S3LimitError, solid_png

PRICE = DEFAULT_PRICES["segmind"]["DEFAULT"]
SOURCE = "uploads/photo.png"
OUT = "reframed/photo.png/"
MANIFEST = OUT + "manifest.json"
# Small allowed resolutions: the fake provider's PNGs stay cheap.
TARGETS = ["1536x512", "512x1536", "960x832"]


class RecordingGuard:
    """NoGuard that keeps what it was asked to guard."""

    def __init__(self) -> None:
        self.works: list[VariantWork] = []

    def run(self, work: VariantWork) -> VariantRecord:
        self.works.append(work)
        return work.produce()


class Harness:
    def __init__(
        self,
        storage: MemoryStorage | None = None,
        provider: FakeProvider | None = None,
        budget: Budget | None = None,
        guard: VariantGuard | None = None,
        fallback: ReframeProvider | None = None,
        **settings: Any,
    ) -> None:
        self.storage = storage or MemoryStorage()
        self.provider = provider or FakeProvider()
        self.budget = budget or Unlimited()
        self.journal = MemoryJournal()
        self.settings = Settings(**{"max_parallel_calls": 4, **settings})
        self.pipeline = Pipeline(
            self.settings,
            self.provider,
            self._storage_for,
            guard=guard or NoGuard(),
            journal=self.journal,
            budget=self.budget,
            fallback=fallback,
        )
        self.clock = Clock()

    def _storage_for(self, bucket: str) -> MemoryStorage:
        assert bucket == self.storage.bucket
        return self.storage

    def upload(self, key: str = SOURCE, body: bytes | None = None, **sidecar: Any) -> None:
        self.storage.put(key, solid_png(64, 48) if body is None else body)
        if sidecar:
            self.sidecar(key, **sidecar)

    def sidecar(self, key: str = SOURCE, targets: list[Any] | None = None, **fields: Any) -> None:
        targets = TARGETS[:2] if targets is None else targets
        document = {
            "version": 1,
            "targets": [t if isinstance(t, dict) else {"resolution": t} for t in targets],
            **fields,
        }
        self.storage.put(key + ".reframe.json", json.dumps(document).encode())

    def handle(self, key: str = SOURCE, action: str = "created", deadline: Deadline | None = None) -> Outcome:
        event = ObjectEvent(bucket=self.storage.bucket, key=key, action=action)  # type: ignore[arg-type]
        return self.pipeline.handle(event, deadline or self.clock.deadline())

    def manifest(self, out: str = OUT) -> dict[str, Any]:
        document: dict[str, Any] = json.loads(self.storage.body(out + "manifest.json"))
        return document

    def outputs(self, out: str = OUT) -> list[str]:
        """The folder's keys without its kept generations (their own tests look at them)."""
        return [key for key in self.storage.keys(out) if not key[len(out) :].startswith(GENERATION_PREFIX)]

    def generations(self, out: str = OUT) -> list[str]:
        return [key for key in self.storage.keys(out) if key.startswith(out + GENERATION_PREFIX)]

    def statuses(self, out: str = OUT) -> dict[str, str]:
        return {v["name"]: v["status"] for v in self.manifest(out)["variants"]}

    def close(self) -> None:
        self.pipeline._io.shutdown()
        self.pipeline.fanout._calls.shutdown()


@pytest.fixture
def make() -> Iterator[Any]:
    made: list[Harness] = []

    def build(**options: Any) -> Harness:
        harness = Harness(**options)
        made.append(harness)
        return harness

    yield build
    for harness in made:
        harness.close()


def _found(h: Harness) -> Any:
    from reframe_pipeline.application.discovery import find_config

    return find_config(h.storage, SOURCE, "uploads/", None, 65536)


# -- skip what exists ------------------------------------------------------------------------------


def test_a_second_run_pays_nothing(make: Any) -> None:
    budget = MemoryBudget(limit=10.0)
    h = make(budget=budget)
    h.upload(targets=TARGETS[:2])
    first = h.handle()
    assert first.action == "processed"
    assert [r.status for r in first.records] == ["created", "created"]
    assert [r.cost_usd for r in first.records] == [PRICE, PRICE]
    assert h.provider.calls == 2
    assert budget.spent == pytest.approx(2 * PRICE)
    assert sorted(h.outputs()) == [OUT + "1536x512.png", OUT + "512x1536.png", MANIFEST]
    assert len(h.generations()) == 2  # each paid generation kept once
    written = h.storage.head(OUT + "1536x512.png")
    assert written is not None
    source = h.storage.head(SOURCE)
    assert source is not None
    assert written.metadata[META_SOURCE_ETAG] == source.etag
    assert written.metadata[META_SOURCE_KEY] == SOURCE
    assert written.metadata[META_PARAMS] == h.pipeline.plan_config(_found(h))[0][0].param_hash
    assert h.manifest()["source"] == {
        "bucket": "bucket",
        "key": SOURCE,
        "etag": source.etag,
        "version": source.version,
        "prepared": None,
    }

    second = h.handle(SOURCE + ".reframe.json")  # the sidecar's own event re-plans the image
    assert second.action == "processed"
    assert [r.status for r in second.records] == ["existing", "existing"]
    assert [r.key for r in second.records] == [OUT + "1536x512.png", OUT + "512x1536.png"]
    assert h.provider.calls == 2
    assert len(budget.reservations) == 2
    assert h.statuses() == {"1536x512": "existing", "512x1536": "existing"}


def test_new_parameters_or_a_new_upload_are_paid_for_again(make: Any) -> None:
    h = make()
    h.upload(targets=TARGETS[:1], seed=100)
    h.handle()
    h.sidecar(targets=TARGETS[:1], seed=200)
    assert [r.status for r in h.handle().records] == ["created"]
    h.upload(body=solid_png(64, 49))  # same parameters, another source version
    assert [r.status for r in h.handle().records] == ["created"]
    assert h.provider.calls == 3
    assert [r.params.seed for r in h.provider.requests] == [100, 200, 200]
    assert [(r.status, r.seed) for r in h.handle().records] == [("existing", 200)]


def test_the_variant_identity_is_the_object_version_and_the_parameters(make: Any) -> None:
    guard = RecordingGuard()
    h = make(guard=guard)
    h.upload(targets=TARGETS[:1], seed=100)
    h.handle()
    h.sidecar(targets=TARGETS[:1], seed=200)
    h.handle()
    first, second = (work.identity for work in guard.works)
    source = h.storage.head(SOURCE)
    assert source is not None
    assert first["params"] != second["params"]
    assert {k: v for k, v in first.items() if k != "params"} == {
        "bucket": "bucket",
        "key": SOURCE,
        "version": source.version,
        "etag": source.etag,
        "variant": "1536x512",
    }
    assert {k: v for k, v in second.items() if k != "params"} == {k: v for k, v in first.items() if k != "params"}
    # The record of a variant made earlier is trusted only while the bucket holds it for these parameters.
    made = VariantRecord(name="1536x512", key=OUT + "1536x512.png", status="existing")
    assert guard.works[1].still_valid(made)
    assert not guard.works[0].still_valid(made)  # written for seed 200 since
    assert not guard.works[1].still_valid(VariantRecord(name="1536x512", status="existing"))
    h.storage.delete([OUT + "1536x512.png"])
    assert not guard.works[1].still_valid(made)


def test_a_paid_generation_is_resumed_only_for_the_same_parameters(make: Any) -> None:
    ticket = Ticket(provider="segmind", result_url="https://result.example/1", expires_at=4e9)

    def submitted_then_lost(request: ReframeRequest) -> None:
        request.meter.submitted(ticket)
        raise ProviderTransientError("connection lost while waiting", code="network")

    h = make(provider=FakeProvider([submitted_then_lost]))
    h.upload(targets=TARGETS[:1], seed=100)
    with pytest.raises(RetryLaterError):
        h.handle()
    h.handle()  # the same work: the ticket is handed back
    h.sidecar(targets=TARGETS[:1], seed=200)
    h.handle()  # other parameters: other work, nothing to resume
    assert [r.resume for r in h.provider.requests] == [None, ticket, None]


# -- stale outputs ---------------------------------------------------------------------------------


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


# -- removal ---------------------------------------------------------------------------------------


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


# -- preparing a source ----------------------------------------------------------------------------


def rotated_jpeg(colour: tuple[int, int, int] = (200, 10, 10)) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees to display
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), colour).save(buffer, "JPEG", exif=exif.tobytes())
    return buffer.getvalue()


def test_an_exif_rotated_source_is_prepared_once_per_version(make: Any) -> None:
    h = make()
    key, out = "uploads/phone.jpg", "reframed/phone.jpg/"
    h.upload(key, rotated_jpeg(), targets=TARGETS[:1])
    first = h.handle(key)
    assert first.manifest is not None
    assert first.manifest.source.prepared == {"reasons": ["exif-orientation"]}
    with Image.open(io.BytesIO(h.storage.body(out + PREPARED_NAME))) as prepared:
        assert prepared.size == (48, 64)  # upright
    assert (out + PREPARED_NAME, 900) in h.storage.presigned  # the provider is sent the prepared copy
    assert (key, 900) not in h.storage.presigned
    assert h.provider.requests[0].source.url.endswith(PREPARED_NAME + "?X-Amz-Expires=900")

    h.sidecar(key, targets=TARGETS[:2])
    h.handle(key)
    assert h.storage.writes.count(out + PREPARED_NAME) == 1
    assert h.provider.calls == 2

    h.upload(key, rotated_jpeg((10, 200, 10)))  # a new version: prepared again
    h.handle(key)
    assert h.storage.writes.count(out + PREPARED_NAME) == 2

    h.upload(key, solid_png(64, 48))  # upright now: the prepared copy is obsolete
    outcome = h.handle(key)
    assert outcome.manifest is not None
    assert outcome.manifest.source.prepared is None
    assert out + PREPARED_NAME not in h.storage.keys(out)
    assert h.provider.requests[-1].source.url.endswith(key + "?X-Amz-Expires=900")


def test_an_upright_source_is_sent_as_it_is_after_reading_only_its_header(make: Any) -> None:
    h = make(source_check="off")
    h.upload(targets=TARGETS[:1])
    h.handle()
    assert PREPARED_NAME not in "".join(h.storage.keys())
    assert [first for key, first in h.storage.reads if key == SOURCE] == [64 * 1024]
    assert h.storage.presigned == [(SOURCE, 900)]


def test_the_source_check_reads_the_source_once_per_run_whatever_the_number_of_variants(make: Any) -> None:
    h = make()
    h.upload(targets=TARGETS[:3])
    outcome = h.handle()
    assert [first for key, first in h.storage.reads if key == SOURCE] == [64 * 1024, None]  # header, thumbnail
    assert all(record.source_match is not None for record in outcome.records)


# -- retries ---------------------------------------------------------------------------------------


def test_a_transient_failure_is_retried_later_with_the_manifest_written(make: Any) -> None:
    h = make(provider=FakeProvider([None, ProviderTransientError("busy", status=503)]), max_parallel_calls=1)
    h.upload(targets=TARGETS[:2])
    with pytest.raises(RetryLaterError, match=r"1 variant\(s\) to retry: 512x1536"):
        h.handle()
    manifest = h.manifest()
    assert h.statuses() == {"1536x512": "created", "512x1536": "failed"}
    assert manifest["variants"][1]["error"] == {"code": "provider_transient", "message": "busy"}
    assert h.outputs() == [OUT + "1536x512.png", MANIFEST]

    outcome = h.handle()  # the redelivery pays for the failed variant only
    assert [r.status for r in outcome.records] == ["existing", "created"]
    assert h.provider.calls == 3


def test_a_permanent_failure_is_not_retried(make: Any) -> None:
    h = make(provider=FakeProvider([ProviderRejectedError("unsafe", status=422)]))
    h.upload(targets=TARGETS[:1])
    outcome = h.handle()
    assert outcome.action == "processed"
    assert h.statuses() == {"1536x512": "failed"}
    assert outcome.records[0].error is not None
    assert outcome.records[0].error.code == "provider_rejected"


# -- money -----------------------------------------------------------------------------------------


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


# -- time ------------------------------------------------------------------------------------------


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


# -- the source changing while it is worked on -----------------------------------------------------


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


# -- S3's limits -----------------------------------------------------------------------------------


def test_a_variant_key_over_s3s_limit_is_refused_before_paying(make: Any) -> None:
    budget = MemoryBudget(limit=1.0)
    h = make(budget=budget)
    name = "n" * 64
    # The manifest's key fits (1024 bytes), the variant's does not.
    stem = "d/" * 498
    key = "uploads/" + stem + "p.png"
    out = "reframed/" + stem + "p.png/"
    assert len((out + "manifest.json").encode()) <= 1024 < len((out + name + ".png").encode())
    h.upload(key, targets=[{"resolution": "1536x512", "name": name}])
    outcome = h.handle(key)
    assert outcome.action == "processed"
    assert outcome.records[0].error is not None
    assert outcome.records[0].error.code == "output_limit"
    assert h.provider.calls == 0
    assert budget.reservations == []
    assert h.storage.keys(out) == [out + "manifest.json"]


def test_a_source_whose_manifest_cannot_be_stored_is_refused_without_a_call(make: Any) -> None:
    h = make()
    key = "uploads/" + "k" * 1010  # its own sidecar's key would be too long: a folder default
    h.upload(key)
    h.storage.put("uploads/_reframe.json", json.dumps({"version": 1, "targets": [{"resolution": TARGETS[0]}]}).encode())
    outcome = h.handle(key)
    assert outcome.action == "invalid"
    assert "1024" in outcome.detail
    assert h.provider.calls == 0
    assert h.storage.keys("reframed/") == []


def test_the_fake_bucket_refuses_what_s3_refuses() -> None:
    storage = MemoryStorage()
    with pytest.raises(S3LimitError):
        storage.write("k" * 1025, b"", "", {})
    with pytest.raises(S3LimitError):
        storage.write("k", b"", "", {"m": "v" * 2048})
    storage.write("k" * 1024, b"x", "", {"m": "v" * 2047})
    assert storage.keys() == ["k" * 1024]


# -- configuration ---------------------------------------------------------------------------------


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


# -- what is written -------------------------------------------------------------------------------


def test_outputs_carry_their_content_types_and_a_readable_manifest(make: Any) -> None:
    h = make(source_check="off")
    h.upload(targets=TARGETS[:1])
    outcome = h.handle()
    variant = h.storage.head(OUT + "1536x512.png")
    manifest = h.storage.head(MANIFEST)
    assert variant is not None and manifest is not None
    assert (variant.content_type, manifest.content_type) == ("image/png", "application/json")
    assert manifest.metadata == {}
    assert h.storage.body(MANIFEST).startswith(b'{\n  "source": {\n    "bucket"')
    generation = variant.metadata["generation"]
    assert outcome.records[0].model_dump(exclude={"latency_ms"}) == {
        "name": "1536x512",
        "key": OUT + "1536x512.png",
        "status": "created",
        "width": 1536,
        "height": 512,
        "resolution": "1536x512",
        "provider": "segmind",
        "seed": 4242,  # the provider's, when the sidecar names none
        "rendering_speed": "DEFAULT",
        "cost_usd": PRICE,
        "attempts": 1,
        "error": None,
        "provenance": {
            "digital_source_type": "http://cv.iptc.org/newscodes/digitalsourcetype/compositeWithTrainedAlgorithmicMedia",
            "model": "Ideogram 3.0 Reframe (Segmind)",
            "signed": False,
        },
        "generation": generation,
        "generation_key": f"{OUT}{GENERATION_PREFIX}{generation}.png",
        "rendered_from_generation": False,
        "note": None,
        "fallback_reason": None,
        "source_match": None,
        "source_box": None,
        "warnings": [],
    }
    again = h.handle().records[0]
    assert again.model_dump(exclude={"latency_ms"}) == {
        "name": "1536x512",
        "key": OUT + "1536x512.png",
        "status": "existing",
        "width": 1536,
        "height": 512,
        "resolution": "1536x512",
        "provider": "segmind",
        "seed": 4242,  # kept in the variant's metadata
        "rendering_speed": "DEFAULT",
        "cost_usd": 0.0,
        "attempts": 0,
        "error": None,
        "provenance": {
            "digital_source_type": "http://cv.iptc.org/newscodes/digitalsourcetype/compositeWithTrainedAlgorithmicMedia",
            "model": "Ideogram 3.0 Reframe (Segmind)",
            "signed": False,
        },
        "generation": generation,
        "generation_key": None,
        "rendered_from_generation": False,
        "note": None,
        "fallback_reason": None,
        "source_match": None,
        "source_box": None,
        "warnings": [],
    }


def test_an_exact_size_is_cropped_and_converted_keeping_the_colour_profile(make: Any) -> None:
    icc = b"\x00" * 128  # any bytes: Pillow carries the profile through, it does not parse it

    def with_profile(size: Any) -> bytes:
        buffer = io.BytesIO()
        Image.new("RGB", (size.width, size.height), (10, 20, 30)).save(buffer, "PNG", icc_profile=icc, compress_level=1)
        return buffer.getvalue()

    h = make(provider=FakeProvider(image=with_profile))
    h.upload(targets=[{"size": "1200x628", "name": "og"}], output={"format": "jpeg", "quality": 70})
    outcome = h.handle()
    assert [(r.key, r.width, r.height, r.resolution) for r in outcome.records] == [
        (OUT + "og.jpg", 1200, 628, str(h.provider.requests[0].resolution))
    ]
    head = h.storage.head(OUT + "og.jpg")
    assert head is not None
    assert head.content_type == "image/jpeg"
    with Image.open(io.BytesIO(h.storage.body(OUT + "og.jpg"))) as written:
        assert (written.format, written.size) == ("JPEG", (1200, 628))
        assert written.info.get("icc_profile") == icc


def test_the_original_format_is_kept_when_only_cropping(make: Any) -> None:
    h = make()
    h.upload(targets=[{"size": "1000x500", "name": "wide"}])
    h.handle()
    with Image.open(io.BytesIO(h.storage.body(OUT + "wide.png"))) as written:
        assert (written.format, written.size) == ("PNG", (1000, 500))


def test_a_target_name_with_dots_is_one_variant(make: Any) -> None:
    h = make()
    h.upload(targets=[{"resolution": "1536x512", "name": "v1.2"}])
    h.handle()
    h.sidecar(targets=[{"resolution": "1536x512", "name": "v1.2"}], output={"format": "jpeg"}, prune=True)
    h.handle()
    assert h.outputs() == [MANIFEST, OUT + "v1.2.jpg"]
    assert [r.status for r in h.handle().records] == ["existing"]  # and pruning keeps it, and its generation
    assert h.outputs() == [MANIFEST, OUT + "v1.2.jpg"]
    assert len(h.generations()) == 1


def test_the_provider_is_asked_for_what_the_sidecar_says(make: Any) -> None:
    h = make()
    h.storage.put("styles/brand.png", solid_png(8, 8))
    h.upload(
        targets=[
            {"resolution": "1536x512", "rendering_speed": "TURBO"},
            {"resolution": "512x1536", "style_codes": ["5A3F09C1"]},
        ],
        style_reference_images=None,
        color_palette={"name": "PASTEL"},
        seed=4321,
    )
    h.sidecar(
        targets=[
            {
                "resolution": "1536x512",
                "rendering_speed": "TURBO",
                "style_reference_images": ["styles/brand.png", "https://example.com/s.png"],
            },
            {"resolution": "512x1536", "style_codes": ["5A3F09C1"]},
        ],
        color_palette={"name": "PASTEL"},
        seed=4321,
    )
    h.handle()
    by_resolution = {str(r.resolution): r.params for r in h.provider.requests}
    turbo, coded = by_resolution["1536x512"], by_resolution["512x1536"]
    assert turbo.rendering_speed == "TURBO"
    assert turbo.style_reference_urls == (
        "https://bucket.s3.example/styles/brand.png?X-Amz-Expires=900",
        "https://example.com/s.png",
    )
    assert (turbo.seed, turbo.color_palette, turbo.style_codes) == (4321, {"name": "PASTEL"}, ())
    assert (coded.rendering_speed, coded.style_codes, coded.style_reference_urls) == ("DEFAULT", ("5A3F09C1",), ())
    turbo_record = next(r for r in h.manifest()["variants"] if r["name"] == "1536x512")
    assert turbo_record["cost_usd"] == DEFAULT_PRICES["segmind"]["TURBO"]
    assert turbo_record["seed"] == 4321


def test_every_paid_attempt_is_counted(make: Any) -> None:
    budget = MemoryBudget(limit=1.0)
    h = make(budget=budget, provider=FakeProvider([lambda request: request.meter.charge()]))  # one retry inside
    h.upload(targets=TARGETS[:1])
    record = h.handle().records[0]
    assert (record.attempts, record.cost_usd) == (2, pytest.approx(2 * PRICE))
    assert budget.spent == pytest.approx(2 * PRICE)


def test_an_unexpected_error_is_retried_later_and_named(make: Any) -> None:
    h = make(provider=FakeProvider([RuntimeError("boom")]))
    h.upload(targets=TARGETS[:1])
    with pytest.raises(RetryLaterError):
        h.handle()
    assert h.manifest()["variants"][0]["error"] == {"code": "internal", "message": "RuntimeError: boom"}


# -- sources that are refused or read further ------------------------------------------------------


def test_a_source_that_is_no_image_gives_a_failed_manifest_without_a_call(make: Any) -> None:
    h = make()
    h.upload(body=b"%PDF-1.7 not an image", targets=TARGETS[:2])
    outcome = h.handle()
    assert outcome.action == "invalid"
    assert outcome.manifest is not None
    assert outcome.manifest.error is not None
    assert outcome.detail == outcome.manifest.error.message
    assert outcome.manifest.error.code == "unsupported_image"
    assert [(r.name, r.status, r.error) for r in outcome.records] == [("*", "failed", outcome.manifest.error)]
    assert h.manifest()["variants"] == [{**h.manifest()["variants"][0], "name": "*", "status": "failed"}]
    assert h.provider.calls == 0


def test_a_truncated_header_is_refused_as_it_is(make: Any) -> None:
    h = make()
    h.upload(body=solid_png(64, 48)[:20], targets=TARGETS[:1])
    outcome = h.handle()
    assert outcome.action == "invalid"
    assert "header does not parse:" in outcome.detail
    assert [first for key, first in h.storage.reads if key == SOURCE] == [64 * 1024]


def test_a_large_header_is_read_further_once(make: Any) -> None:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), (1, 2, 3)).save(buffer, "JPEG", icc_profile=b"\x00" * 100_000)
    h = make(source_check="off")
    h.upload("uploads/big.jpg", buffer.getvalue(), targets=TARGETS[:1])
    outcome = h.handle("uploads/big.jpg")
    assert outcome.records[0].status == "created"
    assert [first for key, first in h.storage.reads if key == "uploads/big.jpg"] == [64 * 1024, 1024 * 1024]


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


def test_a_source_overwritten_while_it_is_prepared_is_not_sent(make: Any) -> None:
    h = make()
    key = "uploads/phone.jpg"
    h.upload(key, rotated_jpeg(), targets=TARGETS[:1])
    source = h.storage.head(key)
    assert source is not None

    def overwrite(read_key: str, first_bytes: int | None) -> None:
        if read_key == key and first_bytes == source.size:  # the whole source, read to prepare it
            h.storage.before_read = None
            h.storage.put(key, rotated_jpeg((0, 0, 255)))

    h.storage.before_read = overwrite
    outcome = h.handle(key)
    assert outcome.records[0].error is not None
    assert outcome.records[0].error.code == "source_changed"
    assert outcome.records[0].error.message == "the source was overwritten or deleted while it was prepared"
    assert h.provider.calls == 0
    assert h.storage.keys("reframed/phone.jpg/") == ["reframed/phone.jpg/manifest.json"]


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


# -- logs of failures ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("failure", "level", "code", "retryable"),
    [
        (ProviderTransientError("busy", status=503), "ERROR", "provider_transient", True),
        (ProviderRejectedError("unsafe", status=422), "WARNING", "provider_rejected", False),
    ],
)
def test_a_failed_variant_is_logged_with_its_code(
    make: Any, caplog: pytest.LogCaptureFixture, failure: Exception, level: str, code: str, retryable: bool
) -> None:
    h = make(provider=FakeProvider([failure]))
    h.upload(targets=TARGETS[:1])
    with caplog.at_level(logging.INFO):
        try:
            h.handle()
        except RetryLaterError:
            assert retryable
    (record,) = [r for r in caplog.records if r.getMessage() == "variant failed"]
    assert record.levelname == level
    assert (record.error_code, record.error, record.retryable) == (code, str(failure), retryable)  # type: ignore[attr-defined]


# -- the values that cross the ports ---------------------------------------------------------------


def test_a_deadline_reads_the_lambda_context_or_counts_down_on_its_own() -> None:
    class Context:
        def get_remaining_time_in_millis(self) -> int:
            return 1234

    assert Deadline.from_context(Context()).remaining_ms() == 1234
    assert 899_000 < Deadline.from_context(object()).remaining_ms() <= 900_000
    assert 4_990 < Deadline(budget_ms=5_000).remaining_ms() <= 5_000


def test_a_source_image_is_loaded_once() -> None:
    loads: list[int] = []
    source = SourceImage("https://x", lambda: loads.append(1) or b"bytes")  # type: ignore[func-returns-value]
    assert (source.load(), source.load(), loads) == (b"bytes", b"bytes", [1])


def test_a_ticket_is_alive_while_it_can_still_be_collected() -> None:
    now = time.time()
    assert Ticket("segmind", "u", expires_at=now + 300).alive()
    assert not Ticket("segmind", "u", expires_at=now + 60).alive()
    assert Ticket("segmind", "u", expires_at=now + 60).alive(margin_s=10)


def test_the_folder_lists_itself_when_not_given_a_listing(make: Any) -> None:
    h = make()
    h.upload(targets=TARGETS[:2])
    h.handle()
    source = h.storage.head(SOURCE)
    assert source is not None
    variants, _ = h.pipeline.plan_config(_found(h))
    existing = h.pipeline.folder(h.storage, SOURCE).existing(source, variants)
    assert sorted(existing) == ["1536x512", "512x1536"]
    assert existing["1536x512"].key == OUT + "1536x512.png"


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


# -- identities that are stored: they must not change between versions ------------------------------


def test_the_stored_identities_do_not_change() -> None:
    # The parameter hash is in every variant's metadata, the generation id names every kept generation,
    # and the work id keys the journal: a change of any makes every variant made so far look stale (paid
    # for again) or loses paid generations.
    sidecar = parse_sidecar(
        json.dumps({"version": 1, "targets": [{"size": "1200x628", "name": "og"}], "seed": 4242}).encode(),
        max_bytes=65536,
        max_targets=20,
    )
    (variant,) = plan(sidecar, provider="segmind", default_speed="DEFAULT", style_prefix="styles/")
    assert variant.param_hash == "dec5f7da6b82769e40b0fe11d29757fc"
    origin = ObjectInfo(key=SOURCE, etag="e", size=1, version="v1")
    gen_id = generation_id(variant, origin, Settings().source_limits.recipe)
    assert (variant.generation_hash, gen_id) == ("2ce90daab65a097d31ced907df991297", "94f12f84491d3fd19deab1ea888c4b79")
    assert fanout._work_id(MemoryStorage(), origin, gen_id) == (
        "c87002586f226af3c98d30d2ebb93259ed955b6264bd04116f80d7ba25660670"
    )
    event = ObjectEvent(bucket="bucket", key=SOURCE, action="created")
    assert pipeline_module._correlation_id(event) == "ad34b4771942b12b"


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


def test_the_folder_is_listed_once_per_run(make: Any) -> None:
    h = make()
    h.upload(targets=TARGETS[:2])
    h.handle()
    h.handle()
    assert h.storage.listings == [OUT, OUT]


def test_a_run_logs_its_counts_and_every_variant_to_retry(make: Any, caplog: pytest.LogCaptureFixture) -> None:
    h = make(max_parallel_calls=1)
    h.upload(targets=TARGETS)
    h.handle()
    h.sidecar(targets=[*TARGETS, "1408x576"])
    h.clock.remaining_ms = 1000
    with caplog.at_level(logging.INFO), pytest.raises(RetryLaterError) as caught:
        h.handle()
    assert caught.value.message == "1 variant(s) to retry: 1408x576"
    done = [r for r in caplog.records if r.getMessage() == "source done"][-1]
    assert (done.variants_created, done.variants_existing, done.variants_failed) == (0, 3, 1)  # type: ignore[attr-defined]
    h.sidecar(targets=["1408x576", "576x1408"])
    with pytest.raises(RetryLaterError, match=r"^2 variant\(s\) to retry: 1408x576, 576x1408$"):
        h.handle()
    failed = h.manifest()["variants"][0]
    assert failed["error"] == {"code": "deadline", "message": "not started: too little time left in this invocation"}


def test_the_prepared_copy_is_a_png_kept_while_needed(make: Any) -> None:
    h = make()
    key, out = "uploads/phone.jpg", "reframed/phone.jpg/"
    h.upload(key, rotated_jpeg(), targets=TARGETS[:1])
    h.handle(key)
    prepared = h.storage.head(out + PREPARED_NAME)
    assert prepared is not None
    assert prepared.content_type == "image/png"


def test_a_header_that_never_parses_is_refused_after_the_last_read(make: Any) -> None:
    h = make()
    junk = b"\x89PNG\r\n\x1a\n" + b"\x00" * (2 * 1024 * 1024)
    h.upload(body=junk, targets=TARGETS[:1])
    outcome = h.handle()
    assert (outcome.action, outcome.detail) == (
        "invalid",
        "the PNG header does not parse in the first 1,048,576 bytes: refused without reading more",
    )
    h.upload(body=junk[: 100 * 1024], targets=TARGETS[:1])  # all of it read by the second read
    assert h.handle().detail.startswith("the PNG header does not parse: ")


def test_the_providers_pixels_are_stored_untouched_when_nothing_is_asked(make: Any) -> None:
    h = make()
    h.upload(targets=TARGETS[:1])
    h.handle()
    stored = h.storage.body(OUT + "1536x512.png")
    with Image.open(io.BytesIO(stored)) as written, Image.open(io.BytesIO(solid_png(1536, 512))) as given:
        assert written.tobytes() == given.tobytes()  # the provenance mark is added beside the pixels
    assert b"compositeWithTrainedAlgorithmicMedia" in stored


def test_the_journal_follows_each_variant_to_written(make: Any) -> None:
    h = make()
    h.upload(targets=TARGETS[:1])
    h.handle()
    assert list(h.journal.states.values()) == ["written"]


def test_a_collected_generation_is_reported_at_its_price(make: Any) -> None:
    ticket = Ticket(provider="segmind", result_url="https://result.example/1", expires_at=4e9)

    def submitted_then_lost(request: ReframeRequest) -> None:
        request.meter.submitted(ticket)
        raise ProviderTransientError("connection lost while waiting", code="network")

    budget = MemoryBudget(limit=1.0)
    h = make(provider=FakeProvider([submitted_then_lost]), budget=budget)
    h.upload(targets=TARGETS[:1], seed=4321)
    with pytest.raises(RetryLaterError):
        h.handle()
    failed = h.manifest()["variants"][0]
    assert (failed["attempts"], failed["cost_usd"], failed["seed"]) == (1, PRICE, 4321)
    record = h.handle().records[0]
    assert (record.status, record.attempts, record.cost_usd) == ("created", 0, PRICE)
    assert budget.spent == pytest.approx(PRICE)


class _Ticking:
    """time.monotonic advancing a second per call: latencies without waiting."""

    def __init__(self) -> None:
        self.now = 0.0

    def monotonic(self) -> float:
        self.now += 1.0
        return self.now


def test_latencies_are_in_milliseconds(make: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(variants_module, "time", _Ticking())
    h = make(provider=FakeProvider([None, ProviderRejectedError("no", status=422)]), max_parallel_calls=1)
    h.upload(targets=TARGETS[:2])
    created, failed = h.handle().records
    assert (created.latency_ms, failed.latency_ms) == (1000, 1000)


@pytest.mark.parametrize(("extra", "refused"), [(0, False), (1, True)])
def test_a_variant_key_is_checked_for_the_longest_extension(make: Any, extra: int, refused: bool) -> None:
    h = make()
    out_len = len("reframed/") + len("p.png/")
    name = "n" * 64
    stem = "d/" * ((1024 - out_len - len(name) - len(".jpeg")) // 2)
    key = "uploads/" + stem + "e" * extra + "p.png"
    assert len(("reframed/" + stem + "e" * extra + "p.png/" + name + ".jpeg").encode()) == 1024 + extra
    h.upload(key)
    h.storage.put(
        "uploads/_reframe.json",
        json.dumps({"version": 1, "targets": [{"resolution": TARGETS[0], "name": name}]}).encode(),
    )
    record = h.handle(key).records[0]
    assert (record.status == "failed") is refused
    if refused:
        assert record.error is not None
        assert record.error.message == (
            "the output key would be 1025 bytes, over S3's limit of 1024: shorten the source key or the target name"
        )


def test_a_ticket_that_had_to_be_paid_again_is_counted_once(make: Any) -> None:
    ticket = Ticket(provider="segmind", result_url="https://result.example/1", expires_at=4e9)

    def submitted_then_lost(request: ReframeRequest) -> None:
        request.meter.submitted(ticket)
        raise ProviderTransientError("connection lost while waiting", code="network")

    def expired_so_generated_again(request: ReframeRequest) -> None:
        request.meter.charge()

    h = make(provider=FakeProvider([submitted_then_lost, expired_so_generated_again]))
    h.upload(targets=TARGETS[:1])
    with pytest.raises(RetryLaterError):
        h.handle()
    record = h.handle().records[0]
    assert h.provider.requests[1].resume == ticket
    assert (record.attempts, record.cost_usd) == (1, PRICE)


def test_an_output_of_ours_that_fails_its_check_is_a_permanent_failure(
    make: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    checked: list[tuple[bytes, Any]] = []

    def failing_check(body: bytes, expected: Any = None) -> None:
        checked.append((body, expected))
        raise ImageCheckError("image is 1x1, expected 1000x500")

    monkeypatch.setattr(variants_module, "verify", failing_check)
    h = make()
    h.upload(targets=[{"size": "1000x500", "name": "wide"}, TARGETS[0]])
    outcome = h.handle()  # a bug of ours, not the user's input: no retry
    wide, plain = outcome.records
    assert wide.error is not None
    assert (wide.error.code, wide.error.message) == (
        "output_check",
        "output check failed: image is 1x1, expected 1000x500",
    )
    # Every stored output is checked, the provider's own bytes too: marking them changed them.
    assert plain.error is not None and plain.error.code == "output_check"
    assert sorted(str(expected) for _, expected in checked) == ["1000x500", "1536x512"]


def test_provider_calls_run_in_the_call_pool_of_max_parallel_calls_threads(make: Any) -> None:
    threads: list[str] = []
    h = make(max_parallel_calls=1)
    h.provider.during = lambda request: threads.append(threading.current_thread().name)
    h.upload(targets=TARGETS)
    h.handle()
    assert threads == ["reframe-call_0"] * 3  # MAX_PARALLEL_CALLS=1: one call at a time, on one thread


# -- generations and renditions --------------------------------------------------------------------


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


def test_kept_generations_are_tagged_for_their_lifecycle_rule(make: Any) -> None:
    h = make()
    h.upload(targets=TARGETS[:1])
    h.handle()
    (kept,) = h.generations()
    assert h.storage.tags[kept] == {"reframe-kind": "generation"}
    assert h.storage.tags[OUT + "1536x512.png"] == {}


# --- provenance in every variant, and the notices' deadline and contents ---------------------------------------


def xmp_of(body: bytes) -> str:
    with Image.open(io.BytesIO(body)) as image:
        packet = image.info.get("xmp") or image.info.get("XML:com.adobe.xmp") or b""
    return packet.decode() if isinstance(packet, bytes) else packet


@pytest.mark.parametrize(
    ("output", "target", "key"),
    [
        ({"format": "original"}, {"resolution": "1536x512"}, OUT + "1536x512.png"),  # kept as it is
        ({"format": "jpeg"}, {"resolution": "1536x512"}, OUT + "1536x512.jpg"),  # converted
        ({"format": "webp"}, {"resolution": "1536x512"}, OUT + "1536x512.webp"),
        ({"format": "original"}, {"size": "1000x500", "name": "wide"}, OUT + "wide.png"),  # cropped
    ],
)
def test_every_variant_says_how_it_was_made_and_who_made_its_source(
    make: Any, output: dict[str, str], target: dict[str, str], key: str
) -> None:
    exif = Image.Exif()
    exif[0x013B] = "Jane Photographer"
    source = io.BytesIO()
    Image.new("RGB", (64, 48), (90, 60, 30)).save(source, "PNG", exif=exif.tobytes())
    h = make()
    h.upload(body=source.getvalue(), targets=[target], output=output)
    h.handle()
    packet = xmp_of(h.storage.body(key))
    assert "compositeWithTrainedAlgorithmicMedia" in packet
    assert "<rdf:li>Jane Photographer</rdf:li>" in packet


class RecordingNotifier:
    def __init__(self) -> None:
        self.published: list[tuple[Any, Deadline]] = []

    def publish(self, detail: Any, deadline: Deadline) -> None:
        self.published.append((detail, deadline))


def test_notices_are_sent_within_the_invocations_deadline_and_a_removal_names_the_variants(make: Any) -> None:
    h = make()
    notifier = h.pipeline.notifier = RecordingNotifier()
    h.upload(targets=TARGETS[:2])
    deadline = h.clock.deadline()
    h.handle(deadline=deadline)
    h.storage.delete([SOURCE])
    removal_deadline = h.clock.deadline()
    h.handle(action="removed", deadline=removal_deadline)

    (made, made_deadline), (gone, gone_deadline) = notifier.published
    assert (made.status, made_deadline) == ("completed", deadline)
    assert (gone.status, gone_deadline) == ("removed", removal_deadline)
    assert made_deadline is deadline and gone_deadline is removal_deadline
    assert sorted(v.key for v in gone.variants) == sorted(v.key for v in made.variants)
    assert gone.counts.removed == 2


def test_each_paid_variant_is_measured_as_the_readme_lists(make: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    measured: list[tuple[str, float, object]] = []
    monkeypatch.setattr(variants_module, "measure", lambda name, value, unit: measured.append((name, value, unit)))
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


def test_a_jpeg_answer_kept_as_it_is_keeps_the_providers_pixels(make: Any) -> None:
    def jpeg(size: Any) -> bytes:
        buffer = io.BytesIO()
        Image.new("RGB", (size.width, size.height), (10, 120, 30)).save(buffer, "JPEG", quality=80)
        return buffer.getvalue()

    h = make(provider=FakeProvider(image=jpeg))
    h.upload(targets=TARGETS[:1])
    (record,) = h.handle().records
    written = h.storage.body(record.key)
    answered = jpeg(h.provider.requests[0].resolution)
    assert written.startswith(b"\xff\xd8\xff")
    assert written.endswith(answered[answered.index(b"\xff\xda") :])  # the same scan: not re-encoded
    assert "compositeWithTrainedAlgorithmicMedia" in xmp_of(written)


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
