"""The values that cross the ports: objects in the bucket, what the provider is asked and answers, the
ticket of a paid generation, a budget's reservation, one variant's guarded work, a signed variant's parent."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from reframe_pipeline.application.deadline import Deadline
from reframe_pipeline.application.source_image import SourceImage
from reframe_pipeline.domain.manifest import VariantRecord
from reframe_pipeline.domain.resolutions import Size

if TYPE_CHECKING:
    from reframe_pipeline.application.ports import Meter


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    etag: str
    size: int
    content_type: str = ""
    metadata: dict[str, str] = field(default_factory=dict)
    # Which upload this is: the S3 version id, or the last-modified time where versioning is off.
    version: str = ""
    # When it was uploaded (epoch seconds, S3's LastModified); None where unknown (a listing).
    last_modified: float | None = None


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
    result_url: str  # Ideogram's image URL; Segmind v2's response URL; the image URL of a Segmind v1 answer
    expires_at: float  # epoch seconds: the provider discards the result then
    status_url: str | None = None  # Segmind v2: polled until the job is done
    seed: int | None = None

    def alive(self, margin_s: float = 120.0) -> bool:
        """Still collectable, with time to spare for the collection itself."""
        return time.time() + margin_s < self.expires_at


Refund = Callable[[], None]


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


@dataclass(frozen=True)
class Reservation:
    """Money taken from one UTC day's budget for one paid attempt."""

    day: str
    cost: float


@dataclass(frozen=True)
class VariantWork:
    """One variant to make: who it is, how long there is, how to make it, and how to tell that a
    variant recorded as made earlier is still in the bucket as made (deleted or overwritten since?)."""

    identity: dict[str, str]
    deadline: Deadline
    produce: Callable[[], VariantRecord]
    still_valid: Callable[[VariantRecord], bool]


@dataclass(frozen=True)
class ParentImage:
    """The image a variant was made from (the one sent to the provider), as C2PA's parentOf ingredient."""

    title: str
    load: Callable[[], bytes]  # its bytes, read when signing (a URL-only provider never needed them)
