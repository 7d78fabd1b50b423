"""AWS's wire formats -> ObjectEvents: S3 notifications (direct, or in the bodies of an SQS batch) and
S3's EventBridge events. Test events and event types the pipeline does not act on yield nothing."""

from __future__ import annotations

import json
from typing import Any, Literal
from urllib.parse import unquote_plus

from reframe_pipeline.domain.errors import PermanentError
from reframe_pipeline.domain.events import ObjectEvent


class MalformedEventError(PermanentError):
    code = "malformed_event"


def _action(event_name: str) -> Literal["created", "removed"] | None:
    name = event_name.removeprefix("s3:")
    if name.startswith("ObjectCreated") or name == "Object Created":
        return "created"
    if name.startswith("ObjectRemoved") or name == "Object Deleted":
        return "removed"
    return None


def _from_s3_record(record: dict[str, Any]) -> ObjectEvent | None:
    try:
        s3 = record["s3"]
        bucket = s3["bucket"]["name"]
        raw_key = s3["object"]["key"]
        event_name = record.get("eventName", "")
    except (KeyError, TypeError) as exc:
        raise MalformedEventError(f"S3 record without {exc}") from None
    action = _action(event_name)
    if action is None:
        return None
    etag = s3["object"].get("eTag") or s3["object"].get("etag")
    # Notification keys are URL-encoded ('+' for space; moto also encodes '/').
    return ObjectEvent(bucket=bucket, key=unquote_plus(raw_key), action=action, etag=etag)


def _from_eventbridge(event: dict[str, Any]) -> ObjectEvent | None:
    try:
        detail = event["detail"]
        bucket = detail["bucket"]["name"]
        key = detail["object"]["key"]
    except (KeyError, TypeError) as exc:
        raise MalformedEventError(f"EventBridge event without {exc}") from None
    action = _action(event.get("detail-type", ""))
    if action is None:
        return None
    # Unlike a notification's, an EventBridge event's key is the key itself, not URL-encoded: taken as it is
    # ('uploads/c++ notes 100%.png' stays that).
    return ObjectEvent(bucket=bucket, key=key, action=action, etag=detail["object"].get("etag"))


def parse_notification(document: Any) -> list[ObjectEvent]:
    """An S3 notification document or an EventBridge event (as found in an SQS body). Test events
    and event types the pipeline does not act on yield an empty list."""
    if not isinstance(document, dict):
        raise MalformedEventError("event is not a JSON object")
    if document.get("Event") == "s3:TestEvent":
        return []
    if document.get("source") == "aws.s3" and "detail" in document:
        found = _from_eventbridge(document)
        return [found] if found else []
    records = document.get("Records")
    if not isinstance(records, list):
        raise MalformedEventError("event has neither 'Records' nor an EventBridge 'detail'")
    return [event for record in records if (event := _from_s3_record(record)) is not None]


def parse_sqs_body(body: str) -> list[ObjectEvent]:
    try:
        document = json.loads(body)
    except json.JSONDecodeError as exc:
        raise MalformedEventError(f"SQS message body is not JSON: {exc}") from None
    return parse_notification(document)


def is_sqs_batch(event: Any) -> bool:
    records = event.get("Records") if isinstance(event, dict) else None
    return bool(records) and isinstance(records, list) and records[0].get("eventSource") == "aws:sqs"
