"""The signer port as the application uses it: what it is handed (the variant with its XMP already in, the
source as parent), what is written (its output, or the unsigned variant when it fails), what the manifest says."""

from __future__ import annotations

import json
import struct
import zlib
from collections.abc import Iterator
from typing import Any

import pytest

from reframe_pipeline.adapters.daily_budget import Unlimited
from reframe_pipeline.adapters.dynamodb_guard import NoGuard
from reframe_pipeline.adapters.journal import MemoryJournal
from reframe_pipeline.adapters.optimizers import optimize
from reframe_pipeline.application.pipeline import Pipeline
from reframe_pipeline.application.values import ParentImage
from reframe_pipeline.composition import pipeline_options
from reframe_pipeline.domain.events import ObjectEvent
from reframe_pipeline.domain.provenance import Provenance
from reframe_pipeline.settings import Settings
from tests.unit.fakes import Clock, FakeProvider, MemoryStorage, solid_png

SOURCE = "uploads/shoot/photo.png"
VARIANT = "reframed/shoot/photo.png/1536x512.png"


def with_credentials(png: bytes) -> bytes:
    """A stand-in for Content Credentials: one more chunk before IEND (the image still decodes)."""
    data = b"fake credentials"
    chunk = struct.pack(">I", len(data)) + b"caBX" + data + struct.pack(">I", zlib.crc32(b"caBX" + data))
    return png[:-12] + chunk + png[-12:]


class FakeSigner:
    def __init__(self, fails: bool = False) -> None:
        self.fails = fails
        self.calls: list[tuple[bytes, str, str, bytes, Provenance]] = []

    def sign(self, body: bytes, mime: str, parent: ParentImage, provenance: Provenance) -> bytes | None:
        self.calls.append((body, mime, parent.title, parent.load(), provenance))
        return None if self.fails else with_credentials(body)


@pytest.fixture
def run() -> Iterator[Any]:
    pipelines: list[Pipeline] = []

    def handle(signer: FakeSigner, storage: MemoryStorage) -> dict[str, Any]:
        pipeline = Pipeline(
            pipeline_options(Settings(max_parallel_calls=2)),
            FakeProvider(),
            lambda bucket: storage,
            guard=NoGuard(),
            journal=MemoryJournal(),
            budget=Unlimited(),
            signer=signer,
            optimizer=optimize,
        )
        pipelines.append(pipeline)
        pipeline.handle(ObjectEvent(bucket=storage.bucket, key=SOURCE, action="created"), Clock().deadline())
        manifest: dict[str, Any] = json.loads(storage.body("reframed/shoot/photo.png/manifest.json"))
        return manifest

    yield handle
    for pipeline in pipelines:
        pipeline.close()


def uploaded() -> MemoryStorage:
    storage = MemoryStorage()
    storage.put(SOURCE, solid_png(64, 48))
    storage.put(SOURCE + ".reframe.json", json.dumps({"version": 1, "targets": [{"resolution": "1536x512"}]}).encode())
    return storage


def test_a_variant_is_signed_after_its_xmp_and_written_as_signed(run: Any) -> None:
    signer, storage = FakeSigner(), uploaded()

    [variant] = run(signer, storage)["variants"]

    [(body, mime, title, parent, provenance)] = signer.calls
    assert b"Iptc4xmpExt:DigitalSourceType" in body  # the XMP is in before signing: the signature covers it
    assert (mime, title, parent) == ("image/png", "photo.png", storage.body(SOURCE))
    assert provenance.digital_source_type.endswith("/compositeWithTrainedAlgorithmicMedia")  # as in the XMP
    assert storage.body(VARIANT) == with_credentials(body)  # nothing changed the file after signing
    head = storage.head(VARIANT)
    assert head is not None and head.metadata["content-credentials"] == "c2pa"
    assert (variant["status"], variant["provenance"]["signed"]) == ("created", True)

    # Run again: the variant exists, and its manifest entry still says it is signed.
    [again] = run(FakeSigner(), storage)["variants"]
    assert (again["status"], again["provenance"]["signed"]) == ("existing", True)


def test_a_variant_the_signer_could_not_sign_is_written_unsigned(run: Any) -> None:
    signer, storage = FakeSigner(fails=True), uploaded()

    [variant] = run(signer, storage)["variants"]

    [(body, *_)] = signer.calls
    assert storage.body(VARIANT) == body
    head = storage.head(VARIANT)
    assert head is not None and "content-credentials" not in head.metadata
    assert (variant["status"], variant["provenance"]["signed"]) == ("created", False)
