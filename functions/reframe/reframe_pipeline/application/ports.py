"""Every port the application talks to (storage, provider, guard, journal, budget, notifier, signer) and the values
that cross them. Adapters implement the ports; the handler and the CLI build the adapters and hand them in."""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from PIL import Image

from reframe_pipeline.domain import source_check
from reframe_pipeline.domain.manifest import VariantRecord
from reframe_pipeline.domain.notices import NoticeDetail
from reframe_pipeline.domain.provenance import Credits, Provenance
from reframe_pipeline.domain.resolutions import Size


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    etag: str
    size: int
    content_type: str = ""
    metadata: dict[str, str] = field(default_factory=dict)
    # Which upload this is: the S3 version id, or the last-modified time where versioning is off.
    version: str = ""


class Storage(Protocol):
    """One bucket."""

    bucket: str

    def head(self, key: str) -> ObjectInfo | None: ...

    def read(self, key: str, first_bytes: int | None = None) -> bytes: ...

    def write(
        self,
        key: str,
        body: bytes,
        content_type: str,
        metadata: dict[str, str],
        tags: dict[str, str] | None = None,
        cache_control: str | None = None,
    ) -> None:
        """Raises BucketWriteError when the bucket is missing or refuses the write."""

    def presign_get(self, key: str, expires_s: int) -> str: ...

    def list_objects(self, prefix: str) -> list[ObjectInfo]: ...

    def delete(self, keys: list[str]) -> None: ...


class Deadline:
    """Time left in this invocation; backed by the Lambda context when there is one."""

    def __init__(self, remaining_ms: Callable[[], int] | None = None, *, budget_ms: int = 900_000) -> None:
        if remaining_ms is None:
            end = time.monotonic() + budget_ms / 1000
            remaining_ms = lambda: int((end - time.monotonic()) * 1000)  # noqa: E731
        self.remaining_ms = remaining_ms

    @classmethod
    def from_context(cls, context: Any) -> Deadline:
        getter = getattr(context, "get_remaining_time_in_millis", None)
        return cls(getter) if callable(getter) else cls()


class SourceImage:
    """The image sent to the provider: a presigned URL for remote providers, bytes loaded on demand
    (once) for providers that need them, so a URL-only provider never downloads the source. ``credits``:
    the uploaded source's creator and rights, carried into every variant."""

    def __init__(self, url: str, loader: Callable[[], bytes], credits: Credits | None = None) -> None:
        self.url = url
        self.credits = credits or Credits()
        self._loader = loader
        self._data: bytes | None = None
        self._thumbnail: Image.Image | None = None
        self._lock = threading.Lock()
        self._thumbnail_lock = threading.Lock()

    def load(self) -> bytes:
        with self._lock:
            if self._data is None:
                self._data = self._loader()
            return self._data

    def thumbnail(self) -> Image.Image:
        """The source's small grayscale thumbnail (the source check's), made once: from the bytes when a provider
        loaded them already, else from one read whose bytes are dropped as soon as it is made."""
        with self._thumbnail_lock:
            if self._thumbnail is None:
                with self._lock:
                    data = self._data
                with Image.open(io.BytesIO(data if data is not None else self._loader())) as image:
                    self._thumbnail = source_check.thumbnail(image)
            return self._thumbnail


@dataclass(frozen=True)
class GenerationParams:
    """What the provider is asked for besides the image (style references already resolved to URLs)."""

    rendering_speed: str = "DEFAULT"
    seed: int | None = None
    style_codes: tuple[str, ...] = ()
    style_reference_urls: tuple[str, ...] = ()
    color_palette: dict[str, Any] | None = None


@dataclass(frozen=True)
class Ticket:
    """A generation the provider holds after it was paid for: enough to collect the result later (in a
    later attempt or invocation) without generating, and paying, again."""

    provider: str
    result_url: str  # Ideogram's image URL; Segmind v2's response URL
    expires_at: float  # epoch seconds: the provider discards the result then
    status_url: str | None = None  # Segmind v2: polled until the job is done
    seed: int | None = None

    def alive(self, margin_s: float = 120.0) -> bool:
        """Still collectable, with time to spare for the collection itself."""
        return time.time() + margin_s < self.expires_at


Refund = Callable[[], None]


class Meter(Protocol):
    """Money and progress around one variant's provider call, kept by the application layer."""

    def charge(self) -> Refund:
        """Reserve the cost of one paid attempt (may refuse: budget); the callable gives it back."""
        ...

    def submitted(self, ticket: Ticket | None) -> None:
        """A paid generation is held by the provider (persist before waiting), or (None) no longer is."""
        ...


class FreeMeter:
    """No budget, no journal: tests and the local provider."""

    def charge(self) -> Refund:
        return lambda: None

    def submitted(self, ticket: Ticket | None) -> None:
        return None


@dataclass(frozen=True)
class ReframeRequest:
    source: SourceImage
    resolution: Size
    params: GenerationParams
    deadline: Deadline
    meter: Meter = field(default_factory=FreeMeter)
    resume: Ticket | None = None  # a generation paid for by an earlier attempt: collect it instead


@dataclass(frozen=True)
class ReframeResult:
    """Verified image bytes: they decode and have exactly the requested resolution."""

    body: bytes
    content_type: str
    attempts: int = 1
    seed: int | None = None
    provider_meta: dict[str, str] = field(default_factory=dict)


class ReframeProvider(Protocol):
    name: str

    def reframe(self, request: ReframeRequest) -> ReframeResult: ...


class Journal(Protocol):
    """Where each variant's paid steps are kept (reserved -> submitted -> generated -> written), by the
    identity of the work, so that a retry, a redelivery or another instance resumes instead of paying."""

    def load(self, work_id: str) -> Ticket | None:
        """The paid generation the provider holds for this work, if one was recorded."""
        ...

    def hold(self, work_id: str, ticket: Ticket | None) -> None:
        """Record the provider's ticket (state ``submitted``), or forget a lost one."""
        ...

    def advance(self, work_id: str, state: str) -> None: ...


@dataclass(frozen=True)
class Reservation:
    """Money taken from one UTC day's budget for one paid attempt."""

    day: str
    cost: float


class Budget(Protocol):
    """The daily spending ceiling: ``reserve`` raises BudgetExceededError when it would be passed."""

    def reserve(self, cost: float) -> Reservation: ...

    def refund(self, reservation: Reservation) -> None: ...


@dataclass(frozen=True)
class VariantWork:
    """One variant to make: who it is, how long there is, how to make it, and how to tell that a
    variant recorded as made earlier is still in the bucket as made (deleted or overwritten since?)."""

    identity: dict[str, str]
    deadline: Deadline
    produce: Callable[[], VariantRecord]
    still_valid: Callable[[VariantRecord], bool]


class VariantGuard(Protocol):
    """Runs ``work.produce`` at most once per identity, however many deliveries and instances ask."""

    def run(self, work: VariantWork) -> VariantRecord: ...


class Notifier(Protocol):
    """Tells downstream systems that a source's work ended, within ``deadline``. Never raises: the work is
    done and paid for, a notice that cannot be delivered is logged and counted by the adapter."""

    def publish(self, detail: NoticeDetail, deadline: Deadline) -> None: ...


class Broadcast:
    """Every configured notifier in turn (none: no notices)."""

    def __init__(self, *notifiers: Notifier) -> None:
        self.notifiers = notifiers

    def publish(self, detail: NoticeDetail, deadline: Deadline) -> None:
        for notifier in self.notifiers:
            notifier.publish(detail, deadline)


@dataclass(frozen=True)
class ParentImage:
    """The image a variant was made from (the one sent to the provider), as C2PA's parentOf ingredient."""

    title: str
    load: Callable[[], bytes]  # its bytes, read when signing (a URL-only provider never needed them)


class ContentSigner(Protocol):
    """Adds C2PA Content Credentials to a finished variant, whose XMP is already in: the signature binds every
    byte, so nothing may change the file after it."""

    def sign(self, body: bytes, mime: str, parent: ParentImage, provenance: Provenance) -> bytes | None:
        """The signed bytes, or None when signing failed (logged and counted by the adapter): the variant is
        paid for, so it is then written unsigned, never lost."""
        ...
