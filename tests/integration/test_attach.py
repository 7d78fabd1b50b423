"""``reframe attach`` over moto's server: EventBridge delivery is added to a bucket's notifications and
nothing else changes, and then S3 -> EventBridge -> the template's rule -> SQS carries keys as they are."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_plus

import pytest

from reframe_cli.cli import main
from reframe_local import servers
from reframe_local.servers import ServerProcess

from ..iac.template_eval import Evaluator, plain_template

BUCKET = "photos-site"
# Characters S3 URL-encodes in its own notifications ("+" for a space, %2B for "+", %25 for "%").
KEY = "uploads/c++ notes 100%.png"


@dataclass
class Site:
    """A bucket that already notifies a queue of its own, and the pipeline's queue behind the stack's rule."""

    s3: Any
    sqs: Any
    existing_queue: str
    pipeline_queue: str
    existing_configuration: dict[str, Any]

    def notification_configuration(self) -> dict[str, Any]:
        answer = self.s3.get_bucket_notification_configuration(Bucket=BUCKET)
        return {k: v for k, v in answer.items() if k != "ResponseMetadata"}

    def received(self, queue_url: str) -> list[dict[str, Any]]:
        """The messages in the queue now (moto delivers during the S3 call that causes them), without the
        s3:TestEvent S3 sends to every queue of a configuration each time one is written."""
        messages = self.sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", [])
        bodies = [json.loads(m["Body"]) for m in messages]
        return [body for body in bodies if body.get("Event") != "s3:TestEvent"]


def _queue(sqs: Any, name: str) -> tuple[str, str]:
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    return url, sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]


@pytest.fixture
def site(aws_env: str, moto_reset: ServerProcess) -> Iterator[Site]:
    s3, sqs, events = (servers.client(name, aws_env) for name in ("s3", "sqs", "events"))
    s3.create_bucket(Bucket=BUCKET)
    existing_url, existing_arn = _queue(sqs, "thumbnails")
    pipeline_url, pipeline_arn = _queue(sqs, "reframe-uploads")
    existing = {
        "QueueConfigurations": [
            {
                "Id": "thumbnails",
                "QueueArn": existing_arn,
                "Events": ["s3:ObjectCreated:*"],
                "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": "uploads/"}]}},
            }
        ]
    }
    s3.put_bucket_notification_configuration(Bucket=BUCKET, NotificationConfiguration=existing)
    # The stack's rule as template.yaml writes it for SourceBucketName=BUCKET, on the default bus.
    template = plain_template()
    rule = Evaluator(template, SourceBucketName=BUCKET)(template["Resources"]["SourceBucketRule"]["Properties"])
    events.put_rule(Name="reframe-source", EventPattern=json.dumps(rule["EventPattern"]), EventBusName="default")
    events.put_targets(Rule="reframe-source", Targets=[{"Id": "upload-queue", "Arn": pipeline_arn}])
    yield Site(s3, sqs, existing_url, pipeline_url, existing)


def _printed(out: str) -> list[dict[str, Any]]:
    """The JSON documents the command printed (each after a title line)."""
    decoder, found, at = json.JSONDecoder(), [], out.find("{")
    while at != -1:
        document, end = decoder.raw_decode(out, at)
        found.append(document)
        at = out.find("\n{", end)
        at = at + 1 if at != -1 else -1
    return found


def test_attach_keeps_the_queue_notification_and_adds_eventbridge(
    site: Site, capsys: pytest.CaptureFixture[str]
) -> None:
    before = site.notification_configuration()
    assert main(["attach", f"s3://{BUCKET}"]) == 0
    out = capsys.readouterr().out
    shown_before, shown_after = _printed(out)
    assert shown_before["QueueConfigurations"] == before["QueueConfigurations"]
    assert shown_after == {**shown_before, "EventBridgeConfiguration": {}}
    assert "written" in out
    # The queue configuration is still there, as it was.
    assert site.notification_configuration()["QueueConfigurations"] == before["QueueConfigurations"]

    site.s3.put_object(Bucket=BUCKET, Key=KEY, Body=b"\x89PNG")
    site.s3.put_object(Bucket=BUCKET, Key="elsewhere/page.html", Body=b"<p>")  # outside the input prefix
    site.s3.delete_object(Bucket=BUCKET, Key=KEY)
    # The bucket's own notification still reaches its queue, with the key URL-encoded as S3 does there.
    ((notification),) = site.received(site.existing_queue)
    encoded = notification["Records"][0]["s3"]["object"]["key"]
    assert encoded != KEY and unquote_plus(encoded) == KEY
    # Through EventBridge and the rule: both events of the input prefix, the key exactly as uploaded.
    created, deleted = site.received(site.pipeline_queue)
    assert (created["source"], created["detail-type"], deleted["detail-type"]) == (
        "aws.s3",
        "Object Created",
        "Object Deleted",
    )
    assert created["detail"]["bucket"]["name"] == BUCKET
    assert created["detail"]["object"]["key"] == deleted["detail"]["object"]["key"] == KEY


def test_dry_run_prints_the_change_and_makes_none(site: Site, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["attach", f"s3://{BUCKET}", "--dry-run"]) == 0
    out = capsys.readouterr().out
    shown_before, shown_after = _printed(out)
    assert shown_after == {**shown_before, "EventBridgeConfiguration": {}}
    assert "dry run: nothing changed" in out
    assert (
        site.notification_configuration()["QueueConfigurations"] == site.existing_configuration["QueueConfigurations"]
    )
    site.s3.put_object(Bucket=BUCKET, Key=KEY, Body=b"\x89PNG")
    assert len(site.received(site.existing_queue)) == 1
    assert site.received(site.pipeline_queue) == []  # EventBridge delivery is still off


def test_a_missing_bucket_is_one_line(aws_env: str, moto_reset: ServerProcess, capsys: pytest.CaptureFixture[str]):
    assert main(["attach", "s3://no-such-bucket"]) == 1
    captured = capsys.readouterr()
    assert (
        captured.err
        == "reframe attach: s3://no-such-bucket: no such bucket (check the name; the bucket must be in this account)\n"
    )
    assert captured.out == ""


def test_a_prefix_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["attach", f"s3://{BUCKET}/uploads/"]) == 2
    assert "notifications belong to the whole bucket; give s3://photos-site" in capsys.readouterr().err
