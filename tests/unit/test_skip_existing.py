"""What a run skips: variants already made for this source version and these parameters cost nothing. In-memory ports only (tests/unit/fakes.py and orchestration_harness.py)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from reframe_pipeline.application import fanout, folder_contents
from reframe_pipeline.application import pipeline as pipeline_module
from reframe_pipeline.application.generations import generation_id
from reframe_pipeline.application.object_metadata import META_PARAMS, META_SOURCE_ETAG, META_SOURCE_KEY
from reframe_pipeline.application.values import ObjectInfo
from reframe_pipeline.domain.events import ObjectEvent
from reframe_pipeline.domain.manifest import VariantRecord
from reframe_pipeline.domain.planning import plan
from reframe_pipeline.domain.sidecar import parse_sidecar
from reframe_pipeline.settings import Settings
from tests.unit.fakes import MemoryBudget, MemoryStorage, solid_png
from tests.unit.orchestration_harness import MANIFEST, OUT, PRICE, SOURCE, TARGETS, RecordingGuard, _found


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
    assert written.metadata[META_PARAMS] == h.pipeline.config.plan(_found(h))[0][0].param_hash
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


def test_the_folder_lists_itself_when_not_given_a_listing(make: Any) -> None:
    h = make()
    h.upload(targets=TARGETS[:2])
    h.handle()
    source = h.storage.head(SOURCE)
    assert source is not None
    variants, _ = h.pipeline.config.plan(_found(h))
    existing = folder_contents.existing(h.pipeline.folder(h.storage, SOURCE), source, variants)
    assert sorted(existing) == ["1536x512", "512x1536"]
    assert existing["1536x512"].key == OUT + "1536x512.png"


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


def test_the_folder_is_listed_once_per_run(make: Any) -> None:
    h = make()
    h.upload(targets=TARGETS[:2])
    h.handle()
    h.handle()
    assert h.storage.listings == [OUT, OUT]
