"""``reframe attach s3://BUCKET``: turn on a bucket's EventBridge notifications for a stack deployed with
SourceBucketName (docs/existing-bucket.md).

S3 keeps one notification configuration per bucket and each write replaces all of it, so the queue,
topic and function configurations already there are read and written back with EventBridge delivery
added: tools that wrote only their own part have wiped the others.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, TextIO

from .backfill import parse_s3_url
from .errors import UserError

# What PutBucketNotificationConfiguration takes; the rest of the answer (ResponseMetadata) is not configuration.
PARTS = ("TopicConfigurations", "QueueConfigurations", "LambdaFunctionConfigurations", "EventBridgeConfiguration")
EVENTBRIDGE = "EventBridgeConfiguration"

# One line for the refusals a user can act on: the code S3 answers with, and what to do.
_REFUSALS = {
    "NoSuchBucket": "no such bucket (check the name; the bucket must be in this account)",
    "AccessDenied": (
        "access denied: attaching needs s3:GetBucketNotification and s3:PutBucketNotification on the bucket"
    ),
    "InvalidArgument": (
        "S3 checks every destination again when the configuration is written, and one of the existing"
        " configurations names a queue, topic or function that is gone or no longer lets S3 send to it;"
        " fix that destination and run again"
    ),
}


def configuration(answer: dict[str, Any]) -> dict[str, Any]:
    """The notification configuration in a GetBucketNotificationConfiguration answer, as Put takes it."""
    return {part: answer[part] for part in PARTS if part in answer}


def with_eventbridge(current: dict[str, Any]) -> dict[str, Any] | None:
    """``current`` with EventBridge delivery added, everything else kept as it is; None when it is on already."""
    if EVENTBRIDGE in current:
        return None
    return {**current, EVENTBRIDGE: {}}


def _show(out: TextIO, title: str, config: dict[str, Any]) -> None:
    out.write(f"{title}\n{json.dumps(config, indent=2, sort_keys=True)}\n")


def _refusal(bucket: str, error: Mapping[str, Any]) -> str | None:
    code = str(error.get("Code"))
    advice = _REFUSALS.get(code)
    if advice is None:
        return None
    detail = str(error.get("Message") or "").rstrip(".")
    # S3's message names the destination it could not validate; for the other codes it adds nothing.
    return f"s3://{bucket}: {advice}" + (f" (S3: {detail})" if detail and code == "InvalidArgument" else "")


def attach(s3: Any, bucket: str, out: TextIO, *, dry_run: bool) -> None:
    """Print the bucket's configuration before and after adding EventBridge delivery, and write it unless
    ``dry_run`` or it is on already."""
    before = configuration(s3.get_bucket_notification_configuration(Bucket=bucket))
    _show(out, f"s3://{bucket}: notification configuration now", before)
    after = with_eventbridge(before)
    if after is None:
        out.write("EventBridge notifications are already on: nothing changed.\n")
        return
    _show(out, "with EventBridge notifications on (every other configuration kept)", after)
    if dry_run:
        out.write("dry run: nothing changed; run without --dry-run to write it.\n")
        return
    s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration=after)
    out.write(f"written: s3://{bucket} now also sends its events to EventBridge.\n")


def run(url: str, out: TextIO, err: TextIO, *, dry_run: bool, s3: Any | None = None) -> int:
    """The command: 0 done (or nothing to do), 1 when S3 refuses for a reason the line on ``err`` gives."""
    import boto3
    from botocore.exceptions import ClientError

    bucket, prefix = parse_s3_url(url)
    if prefix:
        raise UserError(f"{url}: notifications belong to the whole bucket; give s3://{bucket}")
    # Profile, Region and endpoint come from the environment, as for every other command.
    client = s3 if s3 is not None else boto3.client("s3")
    try:
        attach(client, bucket, out, dry_run=dry_run)
    except ClientError as exc:
        message = _refusal(bucket, exc.response.get("Error", {}))
        if message is None:
            raise
        err.write(f"reframe attach: {message}\n")
        return 1
    return 0
