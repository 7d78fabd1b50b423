"""The error taxonomy. Each class says what the pipeline does about it (see README, error policy)."""

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
    ) -> None:
        super().__init__(message, code=code)
        self.status = status
        self.retry_after = retry_after  # seconds the provider asked us to wait, if it said


class ProviderTransientError(ProviderError, TransientError):
    code = "provider_transient"


class ProviderRejectedError(ProviderError, PermanentError):
    code = "provider_rejected"


class ProviderAccountError(ProviderError, AccountError):
    code = "provider_account"


class DeadlineError(TransientError):
    """Not enough Lambda time left to start (or retry) a call: the record goes back to SQS."""

    code = "deadline"
