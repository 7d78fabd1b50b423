"""The error taxonomy. Each class says what the pipeline does about it (docs/reliability.md, the error policy)."""

from __future__ import annotations


class ReframeError(Exception):
    """Base class. ``code`` is the stable string written to manifests and logs."""

    code = "error"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code:
            self.code = code


class PermanentError(ReframeError):
    """Wrong for this input: recorded as ``failed`` in the manifest, acknowledged, never retried."""

    code = "invalid_input"


class TransientError(ReframeError):
    """Might work later (429, 5xx, timeouts, broken bodies): retried, then the record goes back to SQS."""

    code = "transient"


class BucketWriteError(TransientError):
    """A bucket that is missing or refuses writes (OUTPUT_BUCKET, most likely): the record goes back to SQS,
    and the generation, kept already, is rendered again for free once the bucket is fixed."""

    code = "bucket_unwritable"


class WriteConflictError(TransientError):
    """Another run wrote the object between this run's read and its write (a newer sidecar's, or a duplicate
    event's): nothing is overwritten, and the record goes back to SQS to work from what is there now."""

    code = "write_conflict"


class AccountError(ReframeError):
    """The key, permissions or credits are wrong (401/403/404/406): the record goes back to SQS
    so the work is kept until someone fixes the account; logged at ERROR and counted."""

    code = "account"


class ProviderError(ReframeError):
    """Mixin-free marker for errors raised by a provider client (status is the HTTP status if any)."""

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        status: int | None = None,
        retry_after: float | None = None,
        billed: bool = True,
    ) -> None:
        super().__init__(message, code=code)
        self.status = status
        self.retry_after = retry_after  # seconds the provider asked us to wait, if it said
        # Whether the attempt may have cost money. Only what is provably free (refused before any
        # generation: connection refused, 429, other 4xx) is False; the budget gives those back.
        self.billed = billed


class ProviderTransientError(ProviderError, TransientError):
    code = "provider_transient"


class ProviderRejectedError(ProviderError, PermanentError):
    code = "provider_rejected"


class ProviderAccountError(ProviderError, AccountError):
    code = "provider_account"


class SourceChangedError(PermanentError):
    """The source was overwritten or deleted while its variants were made: the newer event wins,
    this result is not written (it would describe a version that no longer exists)."""

    code = "source_changed"


class OutputLimitError(PermanentError):
    """An output key or its metadata would exceed S3's limits: refused before anything is paid."""

    code = "output_limit"


class BudgetExceededError(PermanentError):
    """The daily budget (DAILY_BUDGET_USD) is spent: this variant was not generated."""

    code = "budget_exceeded"


class VariantInProgressError(TransientError):
    """Another invocation is producing this variant right now: come back later, do not call twice."""

    code = "in_progress"


class DeadlineError(TransientError):
    """Not enough Lambda time left to start (or retry) a call: the record goes back to SQS."""

    code = "deadline"


class SidecarAwaitedError(TransientError):
    """A new image without a sidecar of its own, uploaded less than SIDECAR_WAIT_S ago: its record goes back to
    the queue for the rest of that time, so a sidecar uploaded just after it decides what is paid for. A wait,
    not a failure: logged at INFO."""

    code = "waiting_for_sidecar"

    def __init__(self, retry_after_s: int) -> None:
        super().__init__(f"waiting {retry_after_s} s more for its own sidecar")
        self.retry_after_s = retry_after_s
