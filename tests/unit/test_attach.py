"""``reframe attach``'s decisions: what it writes, when it writes nothing, and the one line of a refusal.
(Over moto's server: tests/integration/test_attach.py.)"""

from __future__ import annotations

import io
from typing import Any

import pytest
from botocore.exceptions import ClientError

from reframe_cli import attach

QUEUE = {"Id": "thumbs", "QueueArn": "arn:aws:sqs:us-east-1:123456789012:thumbs", "Events": ["s3:ObjectCreated:*"]}
TOPIC = {"TopicArn": "arn:aws:sns:us-east-1:123456789012:audit", "Events": ["s3:ObjectRemoved:*"]}
FUNCTION = {
    "LambdaFunctionArn": "arn:aws:lambda:us-east-1:123456789012:function:index",
    "Events": ["s3:ObjectCreated:*"],
}


class Bucket:
    """Stands in for boto3's S3 client (its argument names too): answers GetBucketNotificationConfiguration with ``answer`` (or raises ``refusal``); records the writes."""

    def __init__(self, answer: dict[str, Any], refusal: str | None = None) -> None:
        self.answer, self.refusal = answer, refusal
        self.written: list[dict[str, Any]] = []

    def get_bucket_notification_configuration(self, Bucket: str) -> dict[str, Any]:
        if self.refusal:
            raise ClientError(
                {"Error": {"Code": self.refusal, "Message": "refused."}}, "GetBucketNotificationConfiguration"
            )
        return self.answer

    def put_bucket_notification_configuration(self, Bucket: str, NotificationConfiguration: dict[str, Any]) -> None:
        self.written.append(NotificationConfiguration)


def test_eventbridge_is_added_and_every_other_configuration_kept() -> None:
    current = {
        "QueueConfigurations": [QUEUE],
        "TopicConfigurations": [TOPIC],
        "LambdaFunctionConfigurations": [FUNCTION],
    }
    assert attach.with_eventbridge(current) == {**current, "EventBridgeConfiguration": {}}
    assert attach.with_eventbridge({}) == {"EventBridgeConfiguration": {}}
    assert attach.with_eventbridge({**current, "EventBridgeConfiguration": {}}) is None


def test_the_answer_is_read_as_the_configuration_put_takes() -> None:
    answer = {"QueueConfigurations": [QUEUE], "ResponseMetadata": {"HTTPStatusCode": 200}}
    assert attach.configuration(answer) == {"QueueConfigurations": [QUEUE]}


def test_already_on_writes_nothing_and_says_so() -> None:
    bucket, out = Bucket({"QueueConfigurations": [QUEUE], "EventBridgeConfiguration": {}}), io.StringIO()
    assert attach.run("s3://photos", out, io.StringIO(), dry_run=False, s3=bucket) == 0
    assert bucket.written == []
    assert out.getvalue().endswith("EventBridge notifications are already on: nothing changed.\n")


def test_dry_run_writes_nothing() -> None:
    bucket = Bucket({"QueueConfigurations": [QUEUE]})
    assert attach.run("s3://photos", io.StringIO(), io.StringIO(), dry_run=True, s3=bucket) == 0
    assert bucket.written == []


def test_the_write_is_the_merged_configuration() -> None:
    bucket = Bucket({"TopicConfigurations": [TOPIC], "ResponseMetadata": {}})
    assert attach.run("s3://photos", io.StringIO(), io.StringIO(), dry_run=False, s3=bucket) == 0
    assert bucket.written == [{"TopicConfigurations": [TOPIC], "EventBridgeConfiguration": {}}]


@pytest.mark.parametrize(
    ("code", "line"),
    [
        ("NoSuchBucket", "s3://photos: no such bucket (check the name; the bucket must be in this account)"),
        (
            "AccessDenied",
            "s3://photos: access denied: attaching needs s3:GetBucketNotification and s3:PutBucketNotification"
            " on the bucket",
        ),
    ],
)
def test_a_refusal_is_one_line_and_exit_1(code: str, line: str) -> None:
    out, err = io.StringIO(), io.StringIO()
    assert attach.run("s3://photos", out, err, dry_run=False, s3=Bucket({}, refusal=code)) == 1
    assert err.getvalue() == f"reframe attach: {line}\n"


def test_another_error_is_left_to_the_command_line() -> None:
    with pytest.raises(ClientError):
        attach.run("s3://photos", io.StringIO(), io.StringIO(), dry_run=False, s3=Bucket({}, refusal="SlowDown"))
