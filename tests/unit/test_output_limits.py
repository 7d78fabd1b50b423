"""S3's limits on keys and metadata, checked before anything is paid. In-memory ports only (tests/unit/fakes.py and orchestration_harness.py)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.unit.fakes import MemoryBudget, MemoryStorage, S3LimitError
from tests.unit.orchestration_harness import TARGETS


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
