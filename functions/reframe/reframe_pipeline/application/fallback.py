"""The fallback provider (FALLBACK_PROVIDER): which failures it stands in for, and the variant it makes then."""

from __future__ import annotations

import time
from typing import Any

from reframe_pipeline.application.deliverables import delivered
from reframe_pipeline.application.ports import ReframeProvider
from reframe_pipeline.application.values import FreeMeter, GenerationParams, ReframeRequest
from reframe_pipeline.application.variant_job import VariantJob
from reframe_pipeline.application.variant_records import count_refusal
from reframe_pipeline.application.variant_writer import VariantWriter, seed_of
from reframe_pipeline.domain.errors import (
    AccountError,
    BudgetExceededError,
    DeadlineError,
    OutputLimitError,
    ProviderError,
    SourceChangedError,
    VariantInProgressError,
)
from reframe_pipeline.domain.manifest import VariantRecord
from reframe_pipeline.domain.provenance import provenance_for
from reframe_pipeline.observability import count, logger, traced

# Failures that are not the provider failing to make this variant: the work is not this run's to finish
# (the source changed, another invocation holds it), or a fallback would fail the same way (S3's limits),
# or the provider is still at it (a deadline, a job pending: collected on the redelivery).
_NO_FALLBACK = (SourceChangedError, OutputLimitError, DeadlineError, VariantInProgressError)


def falls_back(exc: Exception) -> bool:
    """The provider failed for this variant in this run and will not make it now: refused it (unsafe, 4xx,
    the wrong size twice), the budget refused it, the account is wrong, or its retries are used up."""
    if isinstance(exc, _NO_FALLBACK):
        return False
    return isinstance(exc, ProviderError | BudgetExceededError | AccountError)


class Fallback:
    """The fallback provider's part: making a variant the provider failed for, written like any other."""

    def __init__(self, provider: ReframeProvider, writer: VariantWriter) -> None:
        self.provider = provider
        self.provenance = provenance_for(provider.name)
        self._writer = writer

    def make(self, job: VariantJob, exc: Exception, fields: dict[str, Any], started: float) -> VariantRecord | None:
        """The variant made by the fallback provider after the provider failed it with ``exc``, written beside
        the others but never as a kept generation (those are the provider's); None when the fallback fails too.
        The record keeps the provider's failure: its code and message, and whether the record goes back to
        SQS (a transient or account failure: the redelivery tries the provider again)."""
        v = job.variant
        failure = VariantRecord.failure(v.name, exc)
        params = GenerationParams(rendering_speed=v.rendering_speed, seed=v.seed)
        try:
            with traced("fallback"):
                result = self.provider.reframe(
                    ReframeRequest(job.source, v.resolution, params, job.deadline, FreeMeter())
                )
            written = self._writer.write(job, result, self.provenance, fallback=self.provider.name)
        except Exception as fallback_exc:
            logger.error(
                "fallback failed too",
                extra={
                    "error_code": failure.error.code if failure.error else None,
                    "fallback_error": str(fallback_exc),
                },
            )
            return None
        self._tell(written.key, failure, exc)
        return VariantRecord(
            name=v.name,
            key=written.key,
            status="created",
            width=v.final_size.width,
            height=v.final_size.height,
            latency_ms=int((time.monotonic() - started) * 1000),
            provenance=self.provenance.model_copy(update={"signed": written.signed}),
            **delivered(written.renditions),
            fallback_reason=failure.error,
            retryable=failure.retryable,
            **{**fields, "provider": self.provider.name, "seed": seed_of(job, result)},
        )

    def _tell(self, key: str, failure: VariantRecord, exc: Exception) -> None:
        """Logged as an error when the record goes back to SQS (the provider is tried again), else as a warning."""
        (logger.error if failure.retryable else logger.warning)(
            "variant made by the fallback provider",
            extra={
                "variant_key": key,
                "fallback": self.provider.name,
                "error_code": failure.error.code if failure.error else None,
                "error": str(exc),
                "retryable": failure.retryable,
            },
        )
        count("VariantsFallback")
        count_refusal(exc)
