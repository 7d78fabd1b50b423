"""In-memory stand-ins for every port of the application layer, for fast tests of the orchestration.

The guard, the journal and the budget without a limit already have in-process adapters with no I/O
(adapters.dynamodb_guard.NoGuard, adapters.journal.MemoryJournal, adapters.daily_budget.Unlimited):
tests use those. What is here: a bucket (MemoryStorage), a provider (FakeProvider), a budget with a
limit (MemoryBudget) and a clock for ``Deadline`` (Clock).
"""

from __future__ import annotations

import hashlib
import io
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from PIL import Image

from reframe_pipeline.adapters.daily_budget import today
from reframe_pipeline.application.deadline import Deadline
from reframe_pipeline.application.values import ObjectInfo, ReframeRequest, ReframeResult, Reservation
from reframe_pipeline.domain.errors import BudgetExceededError, ProviderError, WriteConflictError
from reframe_pipeline.domain.resolutions import Size

# S3's own limits, which the fake enforces like S3 does (the pipeline must check them before paying).
S3_MAX_KEY_BYTES = 1024
S3_MAX_METADATA_BYTES = 2048


class S3LimitError(ValueError):
    """What S3 answers to a key or metadata over its limits (KeyTooLongError, MetadataTooLarge)."""


@dataclass
class _Stored:
    body: bytes
    content_type: str
    metadata: dict[str, str]
    version: str
    uploaded_at: float  # S3's LastModified, epoch seconds


class MemoryStorage:
    """One bucket in a dict, thread-safe. ETags are the MD5 of the body, as S3's for single-part uploads;
    each write gets a new version id. ``writes``, ``deletes``, ``reads`` and ``presigned`` record what was
    asked; ``before_read(key, first_bytes)``, when set, runs before each read (to change the bucket meanwhile)."""

    def __init__(self, bucket: str = "bucket") -> None:
        self.bucket = bucket
        self.before_read: Callable[[str, int | None], None] | None = None
        self._objects: dict[str, _Stored] = {}
        self._lock = threading.RLock()  # replace() writes while it holds it
        self._versions = 0
        self.writes: list[str] = []
        self.deletes: list[str] = []
        self.presigned: list[tuple[str, int]] = []
        self.reads: list[tuple[str, int | None]] = []
        self.listings: list[str] = []
        self.tags: dict[str, dict[str, str]] = {}
        self.age_s = 0.0  # how long ago the next writes are dated (their LastModified)
        self.cache_control: dict[str, str | None] = {}

    # -- the port --------------------------------------------------------------------------------
    def head(self, key: str) -> ObjectInfo | None:
        with self._lock:
            stored = self._objects.get(key)
            if stored is None:
                return None
            return self._info(key, stored)

    def read(self, key: str, first_bytes: int | None = None) -> bytes:
        if self.before_read is not None:
            self.before_read(key, first_bytes)
        with self._lock:
            self.reads.append((key, first_bytes))
            stored = self._objects.get(key)
            if stored is None:
                raise FileNotFoundError(f"memory://{self.bucket}/{key} does not exist")
            return stored.body[:first_bytes] if first_bytes else stored.body

    def write(
        self,
        key: str,
        body: bytes,
        content_type: str,
        metadata: dict[str, str],
        tags: dict[str, str] | None = None,
        cache_control: str | None = None,
    ) -> None:
        key_bytes = len(key.encode())
        if key_bytes > S3_MAX_KEY_BYTES:
            raise S3LimitError(f"KeyTooLongError: {key_bytes} bytes")
        meta_bytes = sum(len(k.encode()) + len(v.encode()) for k, v in metadata.items())
        if meta_bytes > S3_MAX_METADATA_BYTES:
            raise S3LimitError(f"MetadataTooLarge: {meta_bytes} bytes")
        with self._lock:
            self._versions += 1
            uploaded_at = time.time() - self.age_s
            self._objects[key] = _Stored(bytes(body), content_type, dict(metadata), f"v{self._versions}", uploaded_at)
            self.writes.append(key)
            self.tags[key] = dict(tags or {})
            self.cache_control[key] = cache_control

    def read_with_etag(self, key: str) -> tuple[bytes, str]:
        body = self.read(key)
        return body, _etag(body)

    def replace(self, key: str, body: bytes, content_type: str, etag: str | None) -> None:
        with self._lock:  # held across the check and the write, as S3 makes a conditional write atomic
            stored = self._objects.get(key)
            if (None if stored is None else _etag(stored.body)) != etag:
                raise WriteConflictError(f"memory://{self.bucket}/{key} was written by another run meanwhile")
            self.write(key, body, content_type, {})

    def presign_get(self, key: str, expires_s: int) -> str:
        with self._lock:
            self.presigned.append((key, expires_s))
        return f"https://{self.bucket}.s3.example/{key}?X-Amz-Expires={expires_s}"

    def list_objects(self, prefix: str) -> list[ObjectInfo]:
        with self._lock:
            self.listings.append(prefix)
            return [
                ObjectInfo(key=key, etag=_etag(stored.body), size=len(stored.body))
                for key, stored in sorted(self._objects.items())
                if key.startswith(prefix)
            ]

    def delete(self, keys: list[str]) -> None:
        with self._lock:
            for key in keys:
                self._objects.pop(key, None)
                self.deletes.append(key)

    # -- for tests -------------------------------------------------------------------------------
    def put(self, key: str, body: bytes, metadata: dict[str, str] | None = None, content_type: str = "") -> str:
        """Upload as a user would; returns the ETag."""
        self.write(key, body, content_type, metadata or {})
        return _etag(body)

    def keys(self, prefix: str = "") -> list[str]:
        with self._lock:
            return sorted(key for key in self._objects if key.startswith(prefix))

    def body(self, key: str) -> bytes:
        with self._lock:
            return self._objects[key].body

    def _info(self, key: str, stored: _Stored) -> ObjectInfo:
        return ObjectInfo(
            key=key,
            etag=_etag(stored.body),
            size=len(stored.body),
            content_type=stored.content_type,
            metadata=dict(stored.metadata),
            version=stored.version,
            last_modified=stored.uploaded_at,
        )


def _etag(body: bytes) -> str:
    return hashlib.md5(body, usedforsecurity=False).hexdigest()


_PNG_CACHE: dict[tuple[int, int, tuple[int, int, int]], bytes] = {}
_PNG_LOCK = threading.Lock()


def solid_png(width: int, height: int, colour: tuple[int, int, int] = (40, 120, 200)) -> bytes:
    """A solid-colour PNG, quick to encode (low compression) and cached per size."""
    with _PNG_LOCK:
        cached = _PNG_CACHE.get((width, height, colour))
    if cached is None:
        buffer = io.BytesIO()
        Image.new("RGB", (width, height), colour).save(buffer, "PNG", compress_level=1)
        cached = buffer.getvalue()
        with _PNG_LOCK:
            _PNG_CACHE[(width, height, colour)] = cached
    return cached


Step = BaseException | Callable[[ReframeRequest], None] | None


class FakeProvider:
    """A provider named ``segmind`` (so the price table applies) that answers with a PNG of exactly the
        requested resolution. Like the real clients it charges the meter once per attempt before the call,
        and gives the charge back when a failure provably cost nothing (``billed=False``).

        ``script``: one step per call, in order (calls past the end succeed): an exception to raise (use the
        classes of domain/errors.py), a callable run mid-call (e.g. to change the bucket while the provider
        works), or None for a plain success. A request that resumes a ticket collects it: not charged again. ``image(size)`` makes the answer (default: a solid-colour PNG). ``during`` runs on every call, mid-call. ``requests``: the calls
    sent, i.e. charged (one the budget refused is not sent)."""

    name = "segmind"

    def __init__(
        self,
        script: Iterable[Step] = (),
        during: Callable[[ReframeRequest], None] | None = None,
        image: Callable[[Size], bytes] | None = None,
    ) -> None:
        self._script: deque[Step] = deque(script)
        self.image = image
        self.during = during
        self.requests: list[ReframeRequest] = []
        self._lock = threading.Lock()

    @property
    def calls(self) -> int:
        return len(self.requests)

    def resolutions(self) -> list[Size]:
        return sorted((r.resolution for r in self.requests), key=str)

    def reframe(self, request: ReframeRequest) -> ReframeResult:
        # May raise BudgetExceededError: then nothing is sent. Collecting a paid generation costs nothing.
        refund = request.meter.charge() if request.resume is None else (lambda: None)
        with self._lock:
            self.requests.append(request)
            step = self._script.popleft() if self._script else None
        if self.during is not None:
            self.during(request)
        if callable(step):
            step(request)
        elif isinstance(step, BaseException):
            if isinstance(step, ProviderError) and not step.billed:
                refund()
            raise step
        size = request.resolution
        body = self.image(size) if self.image is not None else solid_png(size.width, size.height)
        seed = request.params.seed if request.params.seed is not None else 4242
        return ReframeResult(body=body, content_type="image/png", attempts=1, seed=seed)


@dataclass
class MemoryBudget:
    """A daily budget with a limit, in memory: ``reserve`` raises BudgetExceededError past it."""

    limit: float
    spent: float = 0.0
    reservations: list[Reservation] = field(default_factory=list)
    refunds: list[Reservation] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def reserve(self, cost: float) -> Reservation:
        with self._lock:
            if self.spent + cost > self.limit + 1e-9:
                raise BudgetExceededError(f"the daily budget of ${self.limit} is spent")
            self.spent += cost
            reservation = Reservation(today(), cost)
            self.reservations.append(reservation)
            return reservation

    def refund(self, reservation: Reservation) -> None:
        with self._lock:
            self.spent -= reservation.cost
            self.refunds.append(reservation)


class Clock:
    """Time left in the invocation, set by the test: ``Deadline(clock)`` never looks at real time."""

    def __init__(self, remaining_ms: int = 900_000) -> None:
        self.remaining_ms = remaining_ms

    def __call__(self) -> int:
        return self.remaining_ms

    def deadline(self) -> Deadline:
        return Deadline(self)
