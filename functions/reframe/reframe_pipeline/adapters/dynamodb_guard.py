"""Never pay twice for a variant: a per-variant lock and result record in DynamoDB (Powertools
Idempotency), keyed on the object's identity and the variant's parameters, never on the message."""

from __future__ import annotations

from typing import Any

from reframe_pipeline.application.deadline import Deadline
from reframe_pipeline.application.values import VariantWork
from reframe_pipeline.domain.errors import VariantInProgressError
from reframe_pipeline.domain.manifest import VariantRecord
from reframe_pipeline.observability import count, logger

# Completed records outlive any SQS redelivery (at most 14 days of retention).
RECORD_TTL_S = 15 * 24 * 3600


class _FailedVariantError(Exception):
    """Carries a failed record out of the guarded function, so Powertools releases the lock."""

    def __init__(self, record: VariantRecord) -> None:
        super().__init__(record.error.message if record.error else "failed")
        self.record = record


class NoGuard:
    """Local use without a table: the existing-variant check in S3 is the only protection."""

    def run(self, work: VariantWork) -> VariantRecord:
        return work.produce()


class _DeadlineContext:
    """What Powertools reads from a Lambda context: the in-progress lock expires with the invocation."""

    def __init__(self, deadline: Deadline) -> None:
        self.get_remaining_time_in_millis = deadline.remaining_ms


class _VariantGoneError(Exception):
    """The record says made, the bucket says no: the reason given to Powertools for forgetting it."""


class DynamoDBGuard:
    # Powertools' idempotency utility is imported only here: without IDEMPOTENCY_TABLE no cold start pays for it.
    def __init__(self, table: str, client: Any) -> None:
        from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer

        self._store = DynamoDBPersistenceLayer(table_name=table, boto3_client=client)

    def run(self, work: VariantWork) -> VariantRecord:
        """``work.produce`` at most once for ``work.identity``."""
        record = self._once(work)
        if record.status != "existing" or work.still_valid(record):
            return record
        logger.info("variant recorded as made is missing or changed in the bucket: making it again")
        self._store.delete_record(work.identity, _VariantGoneError(record.key))
        return self._once(work)

    def _once(self, work: VariantWork) -> VariantRecord:
        from aws_lambda_powertools.utilities.idempotency import IdempotencyConfig, idempotent_function
        from aws_lambda_powertools.utilities.idempotency.exceptions import IdempotencyAlreadyInProgressError
        from aws_lambda_powertools.utilities.idempotency.serialization.pydantic import PydanticSerializer

        config = IdempotencyConfig(
            expires_after_seconds=RECORD_TTL_S,
            raise_on_no_idempotency_key=True,
            lambda_context=_DeadlineContext(work.deadline),  # type: ignore[arg-type]
            response_hook=_replayed,
        )

        @idempotent_function(
            data_keyword_argument="identity",
            persistence_store=self._store,
            config=config,
            output_serializer=PydanticSerializer(VariantRecord),
        )
        def reframe_variant(identity: dict[str, str]) -> VariantRecord:
            record = work.produce()
            # A fallback stands in for a failure: kept only like one, after a paid verdict.
            if (record.status == "failed" or record.fallback_reason is not None) and not _paid_verdict(record):
                raise _FailedVariantError(record)
            return record

        try:
            made: VariantRecord = reframe_variant(identity=work.identity)
        except _FailedVariantError as failed:
            return failed.record
        except IdempotencyAlreadyInProgressError:
            count("VariantsInProgressElsewhere")
            logger.info("variant is being produced by another invocation; will come back")
            return VariantRecord.failure(
                work.identity["variant"], VariantInProgressError("another invocation is producing this variant")
            )
        return made


def _replayed(response: Any, idempotent_data: Any) -> VariantRecord:
    """A record stored by an earlier run: nothing is paid now. A paid verdict (unsafe, wrong size) stays
    failed; a variant produced earlier (the S3 check missed it, e.g. a concurrent duplicate finished between
    our listing and our call) is reported as existing."""
    stored: VariantRecord = response  # names as Powertools' hook protocol calls them
    free = {"cost_usd": 0.0, "latency_ms": None, "attempts": 0}
    if stored.status == "failed":
        count("VariantsFailed")
        return VariantRecord.model_validate({**stored.model_dump(), **free})
    count("VariantsExisting")
    return VariantRecord.model_validate({**stored.model_dump(), **free, "status": "existing"})


def _paid_verdict(record: VariantRecord) -> bool:
    """The provider was paid and answered for good (an image withheld as unsafe, the wrong size again):
    kept like a success, so a duplicate event does not pay for the same verdict again. A new upload of the
    source or new parameters is a new identity, and is tried again."""
    return not record.retryable and record.cost_usd > 0
