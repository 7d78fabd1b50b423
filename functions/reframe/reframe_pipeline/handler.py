"""The Lambda entry point: parse the event, hand each object to the pipeline, report failures."""

from __future__ import annotations

import threading
from concurrent.futures import Future
from functools import cache
from typing import Any

from reframe_pipeline.loading import collector_paused

with collector_paused():  # the cold start's imports
    from reframe_pipeline.adapters import aws
    from reframe_pipeline.adapters.inbound.s3_events import is_sqs_batch, parse_notification, parse_sqs_body
    from reframe_pipeline.adapters.s3_storage import S3Storage, s3_client
    from reframe_pipeline.adapters.sqs_redelivery import hand_back
    from reframe_pipeline.application.deadline import Deadline
    from reframe_pipeline.application.pipeline import Outcome, Pipeline
    from reframe_pipeline.application.threads import ContextPool
    from reframe_pipeline.composition import build_pipeline
    from reframe_pipeline.domain.errors import PermanentError, ReframeError, SidecarAwaitedError
    from reframe_pipeline.domain.events import ObjectEvent
    from reframe_pipeline.observability import count, logger, metrics, tracer
    from reframe_pipeline.settings import current
    from reframe_pipeline.snapstart import register as register_snapstart_hooks

MAX_RECORDS_IN_PARALLEL = 10  # an SQS batch holds at most 10 messages


# The records of a batch ask for the pipeline at once: without it, a cold container's first batch built one per
# record, each with its own provider-call pool and limiter (MAX_PARALLEL_CALLS calls per record, not in all).
_building = threading.Lock()


def pipeline() -> Pipeline:
    """Built once per container: settings, provider client, S3 client and thread pools are reused."""
    with _building:
        return _pipeline()


@cache
def _pipeline() -> Pipeline:
    with collector_paused():  # the clients load their service models: as many long-lived objects again
        settings = current()
        client = s3_client()
        return build_pipeline(settings, lambda bucket: S3Storage(bucket, client))


def reset() -> None:
    """Forget what this process built from its environment (settings, clients, pipeline), as a new
    Lambda container would: for tools and tests that change the environment between invocations."""
    with _building:
        if _pipeline.cache_info().currsize:
            _pipeline().close()
        for built in (current, _pipeline, s3_client, aws.client, aws.session):
            built.cache_clear()


def _summary(outcome: Outcome) -> dict[str, Any]:
    return {
        "bucket": outcome.event.bucket,
        "key": outcome.event.key,
        "action": outcome.action,
        "detail": outcome.detail,
        "variants": [r.model_dump(include={"name", "key", "status", "error"}) for r in outcome.records],
    }


def _handle_events(events: list[ObjectEvent], deadline: Deadline, **where: str) -> list[dict[str, Any]]:
    count("ObjectEvents", len(events))
    summaries = []
    for event in events:
        try:
            summaries.append(_summary(pipeline().handle(event, deadline)))
        except SidecarAwaitedError:  # a wait, said by the pipeline: the record comes back when it is over
            raise
        except Exception as exc:
            # Said here, once: a failed SQS record is only handed back, and Lambda's report of a failed
            # direct invocation names no object. A traceback only where it tells more.
            logger.error(
                "record failed: it will be retried",
                exc_info=not isinstance(exc, ReframeError),
                extra={**where, "bucket": event.bucket, "key": event.key, "error": str(exc)},
            )
            count("RecordsFailed")
            raise
    return summaries


def _malformed(message: str, exc: PermanentError) -> None:
    logger.error(message, extra={"error": exc.message})
    count("MalformedEvents")


def _handle_message(message_id: str, body: str, deadline: Deadline) -> list[dict[str, Any]]:
    try:
        events = parse_sqs_body(body)
    except PermanentError as exc:
        # Retrying cannot fix a malformed message: say so loudly and let it go.
        _malformed("malformed message dropped", exc)
        return []
    return _handle_events(events, deadline, message_id=message_id)


def _sqs_batch(records: list[dict[str, Any]], deadline: Deadline) -> dict[str, Any]:
    """Every record at once, in parallel; those that raised go back to the queue (ReportBatchItemFailures).
    Powertools' batch utility would do the bookkeeping, but importing it (every event data class, asyncio)
    took 67 ms of each cold start."""
    with ContextPool(min(len(records), MAX_RECORDS_IN_PARALLEL), thread_name_prefix="record") as pool:
        started: dict[str, Future[list[dict[str, Any]]]] = {
            r["messageId"]: pool.submit(_handle_message, r["messageId"], r["body"], deadline) for r in records
        }
    failed = [message_id for message_id, future in started.items() if future.exception() is not None]
    waits = {
        message_id: exc.retry_after_s
        for message_id, future in started.items()
        if isinstance(exc := future.exception(), SidecarAwaitedError)
    }
    if failed:
        hand_back(records, set(failed), current().retry_visibility_s, waits)
    return {"batchItemFailures": [{"itemIdentifier": message_id} for message_id in failed]}


def _dispatch(event: dict[str, Any], context: Any) -> dict[str, Any]:
    deadline = Deadline.from_context(context)
    # No AWS request starts that could outlive the invocation: an endpoint that never answers ends the work
    # with the time left, not after botocore's 60 s reads.
    with aws.within(deadline):
        return _dispatch_within(event, deadline)


def _dispatch_within(event: dict[str, Any], deadline: Deadline) -> dict[str, Any]:
    if is_sqs_batch(event):
        return _sqs_batch(event["Records"], deadline)
    # A direct S3 notification or an EventBridge event: a failure raises, so Lambda retries it.
    try:
        events = parse_notification(event)
    except PermanentError as exc:
        _malformed("malformed event refused", exc)
        raise
    return {"results": _handle_events(events, deadline)}


@cache
def _traced() -> Any:
    active = tracer()
    return active.capture_lambda_handler(_dispatch, capture_response=False) if active else _dispatch


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    result: dict[str, Any] = _traced()(event, context)
    return result


register_snapstart_hooks(pipeline)  # with SnapStart on, the pipeline is built into the snapshot
