"""Every port the application talks to: storage, provider, meter, journal, budget, guard, notifier and signer.
Adapters implement them; composition builds the adapters and hands them in. The values that cross them are
in values.py."""

from __future__ import annotations

from typing import Protocol

from reframe_pipeline.application.deadline import Deadline
from reframe_pipeline.application.values import (
    ObjectInfo,
    ParentImage,
    ReframeRequest,
    ReframeResult,
    Refund,
    Reservation,
    Ticket,
    VariantWork,
)
from reframe_pipeline.domain.manifest import VariantRecord
from reframe_pipeline.domain.notices import NoticeDetail
from reframe_pipeline.domain.provenance import Provenance


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

    def read_with_etag(self, key: str) -> tuple[bytes, str]:
        """The whole object and its ETag, for ``replace``; FileNotFoundError when there is none."""

    def replace(self, key: str, body: bytes, content_type: str, etag: str | None) -> None:
        """Write over the object only as it was read: its ETag still ``etag``, or still absent when None.
        Raises WriteConflictError when another writer came first."""

    def presign_get(self, key: str, expires_s: int) -> str: ...

    def list_objects(self, prefix: str) -> list[ObjectInfo]: ...

    def delete(self, keys: list[str]) -> None: ...


class Meter(Protocol):
    """Money and progress around one variant's provider call, kept by the application layer."""

    def charge(self) -> Refund:
        """Reserve the cost of one paid attempt (may refuse: budget); the callable gives it back."""
        ...

    def submitted(self, ticket: Ticket | None) -> None:
        """A paid generation is held by the provider (persist before waiting), or (None) no longer is."""
        ...


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


class Budget(Protocol):
    """The daily spending ceiling: ``reserve`` raises BudgetExceededError when it would be passed."""

    def reserve(self, cost: float) -> Reservation: ...

    def refund(self, reservation: Reservation) -> None: ...


class VariantGuard(Protocol):
    """Runs ``work.produce`` at most once per identity, however many deliveries and instances ask."""

    def run(self, work: VariantWork) -> VariantRecord: ...


class Notifier(Protocol):
    """Tells downstream systems that a source's work ended, within ``deadline``. Never raises: the work is
    done and paid for, a notice that cannot be delivered is logged and counted by the adapter."""

    def publish(self, detail: NoticeDetail, deadline: Deadline) -> None: ...


class ContentSigner(Protocol):
    """Adds C2PA Content Credentials to a finished variant, whose XMP is already in: the signature binds every
    byte, so nothing may change the file after it."""

    def sign(self, body: bytes, mime: str, parent: ParentImage, provenance: Provenance) -> bytes | None:
        """The signed bytes, or None when signing failed (logged and counted by the adapter): the variant is
        paid for, so it is then written unsigned, never lost."""
        ...
