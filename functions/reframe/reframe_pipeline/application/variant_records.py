"""What one variant's production leaves: its manifest record, the log line and the counts that say so."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from reframe_pipeline.application.deliverables import delivered
from reframe_pipeline.application.metering import VariantMeter
from reframe_pipeline.application.source_matching import SourceFound
from reframe_pipeline.application.values import ReframeResult
from reframe_pipeline.application.variant_job import VariantJob
from reframe_pipeline.application.variant_writer import seed_of
from reframe_pipeline.domain.errors import AccountError, BudgetExceededError
from reframe_pipeline.domain.manifest import SOURCE_ALTERED, Rendition, VariantRecord
from reframe_pipeline.domain.planning import PlannedVariant
from reframe_pipeline.domain.provenance import Provenance
from reframe_pipeline.observability import MetricUnit, count, logger, measure


@dataclass(frozen=True)
class Made:
    result: ReframeResult
    renditions: list[Rendition]  # the deliverables written
    latency_ms: int
    resumed: bool
    rerendered: bool  # rendered from a kept generation: nothing paid
    generation_key: str | None
    signed: bool
    note: str | None = None
    found: SourceFound | None = None  # the source check of the generation (None: off, or it failed)
    seed: int | None = None  # the seed of a retried generation (SOURCE_CHECK=retry), the sidecar's notwithstanding
    warnings: tuple[str, ...] = ()  # as written in the variant's metadata (VariantWriter)

    @property
    def key(self) -> str:
        return self.renditions[0].key


def _warnings(made: Made, minimum: float) -> list[str]:
    if SOURCE_ALTERED in made.warnings:
        count("SourceAltered")
        logger.warning(
            "the source looks altered in the generated variant",
            extra={
                "variant_key": made.key,
                "source_match": made.found.score if made.found else None,
                "minimum": minimum,
            },
        )
    return list(made.warnings)


def created_record(
    job: VariantJob,
    made: Made,
    meter: VariantMeter,
    base: dict[str, Any],
    provenance: Provenance,
    minimum: float,
) -> VariantRecord:
    """The record of a variant made by the provider (``minimum``: the source check's SOURCE_MATCH_MIN)."""
    v = job.variant
    # Paid in this run, or in an earlier one whose ticket or held bytes this one used; a kept generation, earlier
    # still (not counted again).
    cost_usd = meter.cost_usd
    count("VariantsCreated")
    found = made.found
    warnings = _warnings(made, minimum)
    if made.rerendered:
        count("VariantsRerendered")
    measure("BytesWritten", sum(r.bytes for r in made.renditions), MetricUnit.Bytes)
    _log_created(made, meter, cost_usd)
    return VariantRecord(
        name=v.name,
        key=made.key,
        status="created",
        width=v.final_size.width,
        height=v.final_size.height,
        cost_usd=cost_usd,
        latency_ms=made.latency_ms,
        attempts=meter.paid_attempts,
        provenance=provenance.model_copy(update={"signed": made.signed}),
        generation=job.gen_id,
        generation_key=made.generation_key,
        rendered_from_generation=made.rerendered,
        note=made.note,
        source_match=found.score if found else None,
        source_box=found.box if found else None,
        warnings=warnings,
        **delivered(made.renditions),
        **{**base, "seed": made.seed or seed_of(job, made.result)},
    )


def _log_created(made: Made, meter: VariantMeter, cost_usd: float) -> None:
    logger.info(
        "variant created",
        extra={
            "variant_key": made.key,
            "latency_ms": made.latency_ms,
            "attempts": meter.paid_attempts,
            "resumed": made.resumed,
            "rendered_from_generation": made.rerendered,
            "cost_usd": cost_usd,
            **made.result.provider_meta,
        },
    )


def failed_record(v: PlannedVariant, exc: Exception, base: dict[str, Any], started: float) -> VariantRecord:
    record = VariantRecord.failure(v.name, exc, **base, latency_ms=int((time.monotonic() - started) * 1000))
    log = logger.error if record.retryable else logger.warning
    log(
        "variant failed",
        extra={
            "error_code": record.error.code if record.error else None,
            "error": str(exc),
            "retryable": record.retryable,
        },
    )
    count("VariantsFailed")
    count_refusal(exc)
    return record


def count_refusal(exc: Exception) -> None:
    """What needs a person, counted whether or not a fallback stood in: the account, or the budget."""
    if isinstance(exc, AccountError):
        count("AccountErrors")
    if isinstance(exc, BudgetExceededError):
        count("BudgetRefusals")
