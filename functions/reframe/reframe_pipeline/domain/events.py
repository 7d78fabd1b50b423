"""Event parsing: S3 notifications (direct or in SQS bodies) and EventBridge events -> ObjectEvents,
and what each key is to the pipeline (README, "What uploads are supported")."""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import Enum
from typing import Any, Literal
from urllib.parse import unquote_plus

from reframe_pipeline.domain.errors import PermanentError

SIDECAR_SUFFIX = ".reframe.json"
FOLDER_SIDECAR = "_reframe.json"
MANIFEST_NAME = "manifest.json"


class MalformedEventError(PermanentError):
    code = "malformed_event"


@dataclass(frozen=True)
class ObjectEvent:
    bucket: str
    key: str
    action: Literal["created", "removed"]
    etag: str | None = None


class KeyKind(Enum):
    IMAGE = "image"
    OBJECT_SIDECAR = "object-sidecar"
    FOLDER_SIDECAR = "folder-sidecar"
    OUTPUT = "output"
    OUTSIDE_INPUT = "outside-input"


def classify(key: str, input_prefix: str, output_prefix: str) -> KeyKind:
    """What a key is. Outputs are checked first so nothing the pipeline writes can trigger it again."""
    name = key.rsplit("/", 1)[-1]
    if key.startswith(output_prefix) or name == MANIFEST_NAME:
        return KeyKind.OUTPUT
    if not key.startswith(input_prefix) or key.endswith("/"):
        return KeyKind.OUTSIDE_INPUT
    if name == FOLDER_SIDECAR:
        return KeyKind.FOLDER_SIDECAR
    if key.endswith(SIDECAR_SUFFIX):
        return KeyKind.OBJECT_SIDECAR
    return KeyKind.IMAGE


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
        raw_key = detail["object"]["key"]
    except (KeyError, TypeError) as exc:
        raise MalformedEventError(f"EventBridge event without {exc}") from None
    action = _action(event.get("detail-type", ""))
    if action is None:
        return None
    # Treated like S3 notification keys: URL-decoded.
    return ObjectEvent(bucket=bucket, key=unquote_plus(raw_key), action=action, etag=detail["object"].get("etag"))


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
