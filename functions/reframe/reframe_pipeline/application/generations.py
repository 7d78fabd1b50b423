"""Kept generations: the provider's bytes as returned, stored once per generation in the source's
output folder, so a change of how a variant is rendered (size, format, quality) pays nothing."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from concurrent.futures import Executor, Future
from contextlib import contextmanager
from typing import Any

from reframe_pipeline.application.ports import Storage
from reframe_pipeline.application.values import ObjectInfo, ReframeResult
from reframe_pipeline.domain.imaging import FORMATS, sniff
from reframe_pipeline.domain.planning import PlannedVariant
from reframe_pipeline.observability import logger

# Names starting with "_" are never target names (the sidecar's name pattern): no variant can collide.
GENERATION_PREFIX = "_generation-"
META_GENERATION = "generation"
META_SEED = "seed"
# The tag the bucket's lifecycle rule expires kept generations by (template.yaml, GenerationsKeepDays).
KIND_TAG = {"reframe-kind": "generation"}
# The longest name a kept generation can have, for the S3 key-length check before paying.
LONGEST_NAME = f"{GENERATION_PREFIX}{'0' * 32}.{max((spec.ext for spec in FORMATS.values()), key=len)}"


def generation_id(variant: PlannedVariant, origin: ObjectInfo, recipe: str) -> str:
    """Everything the provider's pixels depend on: the parameters it sees, the source's content (its
    ETag: a re-upload of the same bytes makes the same pixels) and how it is prepared (``Limits.recipe``)."""
    canonical = "\n".join((variant.generation_hash, origin.etag, recipe))
    return hashlib.sha256(canonical.encode()).hexdigest()[:32]


def is_generation(name: str) -> bool:
    return name.startswith(GENERATION_PREFIX)


def id_of(name: str) -> str:
    """The generation id in a kept generation's file name."""
    return name.removeprefix(GENERATION_PREFIX).split(".", 1)[0]


class Generations:
    """One source's kept generations during one run: found by the folder's listing, read when a
    rendition needs one, written once when paid for (in the background, on ``writes``, while its variant is
    rendered). Renditions that share a generation wait for each other, so one run never pays twice for the
    same pixels."""

    def __init__(
        self, storage: Storage, out_dir: str, present: set[str], keep: bool, recipe: str, writes: Executor
    ) -> None:
        self.storage = storage
        self.writes = writes
        self.out_dir = out_dir
        self.keep = keep
        self.recipe = recipe
        self._found = {
            id_of(key[len(out_dir) :]): key for key in present if key.startswith(out_dir + GENERATION_PREFIX)
        }
        # Made or read in this run, with where it is kept: a second rendition of it reads nothing again.
        self._known: dict[str, tuple[ReframeResult, Future[str | None]]] = {}
        self._metadata: dict[str, dict[str, str]] = {}  # of the kept generations read in this run
        # The source check of each generation looked at in this run (variants.SourceFound, and a retry's seed):
        # its renditions share it.
        self.checks: dict[str, Any] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._lock = threading.Lock()

    def id_for(self, variant: PlannedVariant, origin: ObjectInfo) -> str:
        return generation_id(variant, origin, self.recipe)

    def listed(self, gen_id: str) -> bool:
        """Kept in the bucket as of the folder's listing (an estimate: it may expire before use)."""
        return gen_id in self._found

    @contextmanager
    def exclusive(self, gen_id: str) -> Iterator[None]:
        with self._lock:
            lock = self._locks.setdefault(gen_id, threading.Lock())
        with lock:
            yield

    def load(self, gen_id: str) -> tuple[ReframeResult, Future[str | None]] | None:
        """The generation's bytes and where they are kept (as ``store`` answers it), when this run made them or
        the bucket holds them (the id covers the source version); None otherwise (expired, deleted, never made)."""
        if gen_id in self._known:
            return self._known[gen_id]
        key = self._found.get(gen_id)
        head = self.storage.head(key) if key else None
        if key is None or head is None or head.metadata.get(META_GENERATION) != gen_id:
            return None
        self._metadata[gen_id] = head.metadata
        try:
            body = self.storage.read(key)
        except FileNotFoundError:  # deleted between the look and the read
            return None
        seed = head.metadata.get(META_SEED)
        result = ReframeResult(body=body, content_type=head.content_type, attempts=0, seed=int(seed) if seed else None)
        self._known[gen_id] = (result, _done(key))
        return self._known[gen_id]

    def metadata(self, gen_id: str) -> dict[str, str]:
        """The S3 metadata of a kept generation read in this run (empty for one made in this run)."""
        return self._metadata.get(gen_id, {})

    def store(self, gen_id: str, result: ReframeResult, metadata: dict[str, str]) -> Future[str | None]:
        """Keep a paid generation (unless keeping is off), written in the background: the future answers
        where it is kept, None when it is not. A failed write costs only a later re-render's savings, never
        the variant, so it is logged and passed over."""
        kept = self.writes.submit(self._write, gen_id, result, metadata) if self.keep else _done(None)
        self._known[gen_id] = (result, kept)
        return kept

    def _write(self, gen_id: str, result: ReframeResult, metadata: dict[str, str]) -> str | None:
        fmt = sniff(result.body[:32]) or "png"
        key = f"{self.out_dir}{GENERATION_PREFIX}{gen_id}.{FORMATS[fmt].ext}"
        seed = {META_SEED: str(result.seed)} if result.seed is not None else {}
        try:
            self.storage.write(
                key, result.body, FORMATS[fmt].mime, {**metadata, META_GENERATION: gen_id, **seed}, KIND_TAG
            )
        except Exception as exc:
            logger.warning("generation not kept: a change of rendition will pay again", extra={"error": str(exc)})
            return None
        return key


def _done(key: str | None) -> Future[str | None]:
    done: Future[str | None] = Future()
    done.set_result(key)
    return done
