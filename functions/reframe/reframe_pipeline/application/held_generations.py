"""Paid generations the bucket has not taken yet: held by the process until one is kept, or a run has made every
rendition of it.

A generation answered as bytes (Segmind's sync API) has no ticket to collect again: when S3 refuses the writes
(SlowDown, a timeout), the record goes back to the queue, and its redelivery to this process renders the held
generation instead of paying again. Another instance cannot see it, and pays again: a ticket (Segmind's async
API, a result URL) survives any instance."""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass

from reframe_pipeline.application.source_matching import SourceFound
from reframe_pipeline.application.values import ReframeResult

# What a process holds at most: the oldest generations go first (a Lambda instance has 1 GB or more).
HELD_BYTES = 128 * 1024 * 1024


@dataclass(frozen=True)
class HeldGeneration:
    result: ReframeResult
    check: tuple[SourceFound | None, int | None]  # its source check and retry's seed, made when it was paid for
    cost_usd: float  # what it cost, SOURCE_CHECK=retry's second generation included


class HeldGenerations:
    """Thread-safe, by the generation's journal identity (its work id)."""

    def __init__(self, max_bytes: int = HELD_BYTES) -> None:
        self._max_bytes = max_bytes
        self._held: OrderedDict[str, HeldGeneration] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, work_id: str) -> HeldGeneration | None:
        with self._lock:
            return self._held.get(work_id)

    def hold(self, work_id: str, held: HeldGeneration) -> None:
        with self._lock:
            self._held[work_id] = held
            while sum(len(h.result.body) for h in self._held.values()) > self._max_bytes and len(self._held) > 1:
                self._held.popitem(last=False)

    def drop(self, work_id: str) -> None:
        with self._lock:
            self._held.pop(work_id, None)
