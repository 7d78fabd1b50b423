"""The orchestration tests' harness: a pipeline over in-memory ports (tests/unit/fakes.py), and the source,
folder and targets most tests use."""

from __future__ import annotations

import json
from typing import Any

from reframe_pipeline.adapters.daily_budget import Unlimited
from reframe_pipeline.adapters.dynamodb_guard import NoGuard
from reframe_pipeline.adapters.journal import MemoryJournal
from reframe_pipeline.adapters.optimizers import optimize
from reframe_pipeline.application.deadline import Deadline
from reframe_pipeline.application.generations import GENERATION_PREFIX
from reframe_pipeline.application.pipeline import Outcome, Pipeline
from reframe_pipeline.application.ports import Budget, ReframeProvider, VariantGuard
from reframe_pipeline.application.values import VariantWork
from reframe_pipeline.composition import pipeline_options
from reframe_pipeline.domain.events import ObjectEvent
from reframe_pipeline.domain.manifest import VariantRecord
from reframe_pipeline.domain.pricing import DEFAULT_PRICES
from reframe_pipeline.settings import Settings
from tests.unit.fakes import Clock, FakeProvider, MemoryStorage, solid_png

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
        # Uploads are handled at once here: the wait for a sidecar (SIDECAR_WAIT_S) has tests of its own.
        self.settings = Settings(**{"max_parallel_calls": 4, "sidecar_wait_s": 0, **settings})
        # OUTPUT_BUCKET, when set: a second bucket the deliverables go to.
        self.delivered = MemoryStorage(self.settings.output_bucket) if self.settings.output_bucket else self.storage
        self.pipeline = Pipeline(
            pipeline_options(self.settings),
            self.provider,
            self._storage_for,
            guard=guard or NoGuard(),
            journal=self.journal,
            budget=self.budget,
            fallback=fallback,
            optimizer=optimize,
        )
        self.clock = Clock()

    def _storage_for(self, bucket: str) -> MemoryStorage:
        buckets = {self.storage.bucket: self.storage, self.delivered.bucket: self.delivered}
        return buckets[bucket]

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


def _found(h: Harness) -> Any:
    from reframe_pipeline.application.discovery import find_config

    return find_config(h.storage, SOURCE, "uploads/", None, 65536)
