"""Notices: one EventBridge event per source outcome, really put on a bus (moto's server) and read back
from the SQS queue a rule sends it to; the detail checked against schemas/notice.schema.json."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from reframe_cli.regenerate import regenerate
from reframe_local import servers
from reframe_pipeline.domain import manifest
from reframe_pipeline.settings import Settings

from .conftest import BUCKET, Stack, s3_event
from .test_failure_logs import counted, lines

SCHEMA = json.loads((Path(__file__).resolve().parents[2] / "schemas" / "notice.schema.json").read_text())
SIDECAR = {"version": 1, "targets": [{"resolution": "1024x1024"}, {"size": "1200x628", "name": "og"}]}

Events = Callable[[], list[dict[str, Any]]]


@pytest.fixture
def events(stack: Stack, aws_env: str) -> Events:
    """A bus whose rule (the one in docs/notices.md) sends the pipeline's events to a queue; returns a reader
    of the events delivered so far. moto delivers during PutEvents, so nothing needs waiting for."""
    bus, sqs = servers.client("events", aws_env), servers.client("sqs", aws_env)
    bus.create_event_bus(Name="downstream")
    queue = sqs.create_queue(QueueName="downstream")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    pattern = {"source": ["reframe.pipeline"], "detail-type": ["Reframe Variants Ready", "Reframe Variants Removed"]}
    bus.put_rule(Name="reframe", EventBusName="downstream", EventPattern=json.dumps(pattern))
    bus.put_targets(Rule="reframe", EventBusName="downstream", Targets=[{"Id": "queue", "Arn": arn}])
    stack.configure(EVENT_BUS_NAME="downstream")

    def read() -> list[dict[str, Any]]:
        messages = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, WaitTimeSeconds=0).get("Messages", [])
        for message in messages:
            sqs.delete_message(QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"])
        delivered = [json.loads(message["Body"]) for message in messages]
        for event in delivered:
            jsonschema.validate(event["detail"], SCHEMA)
        return delivered

    return read


class SteppedClock(datetime):
    """The manifests' clock, moved by the test: half a second before a minute's end, then on by ``step``."""

    at = datetime(2026, 12, 5, 18, 59, 59, 500_000, tzinfo=UTC)

    @classmethod
    def now(cls, tz: object = None) -> SteppedClock:  # type: ignore[override]
        return cls.fromtimestamp(cls.at.timestamp(), tz=UTC)

    @classmethod
    def step(cls, seconds: float) -> None:
        cls.at += timedelta(seconds=seconds)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> type[SteppedClock]:
    monkeypatch.setattr(manifest, "datetime", SteppedClock)
    monkeypatch.setattr(SteppedClock, "at", SteppedClock.at)  # each test starts at the same instant
    return SteppedClock


def test_one_event_per_outcome_and_a_redelivery_repeats_its_event_id(
    stack: Stack, events: Events, clock: type[SteppedClock]
):
    stack.put_image("uploads/shoot/rocket.jpg")
    stack.put("uploads/shoot/rocket.jpg.reframe.json", SIDECAR)

    stack.invoke(s3_event("uploads/shoot/rocket.jpg"))

    [event] = events()
    assert (event["source"], event["detail-type"]) == ("reframe.pipeline", "Reframe Variants Ready")
    detail = event["detail"]
    head = stack.s3.head_object(Bucket="reframe-test", Key="uploads/shoot/rocket.jpg")
    assert detail["source"]["key"] == "uploads/shoot/rocket.jpg"
    assert detail["source"]["etag"] == head["ETag"].strip('"')
    assert detail["source"]["version"]
    assert detail["manifest_key"] == "reframed/shoot/rocket.jpg/manifest.json"
    assert detail["status"] == "completed"
    assert detail["counts"] == {"created": 2, "existing": 0, "failed": 0, "removed": 0}
    assert {(v["name"], v["key"], v["status"], v["size"]) for v in detail["variants"]} == {
        ("1024x1024", "reframed/shoot/rocket.jpg/1024x1024.jpg", "created", "1024x1024"),
        ("og", "reframed/shoot/rocket.jpg/og.jpg", "created", "1200x628"),
    }
    assert detail["cost_usd"] == pytest.approx(0.15)
    assert detail["correlation_id"]
    assert stack.stats()["billed"] == 2

    # A redelivery changes nothing: the same outcome is announced again, with the same event_id, in another second.
    first_written = stack.read_json(detail["manifest_key"])["generated_at"]
    clock.step(1)
    stack.invoke(s3_event("uploads/shoot/rocket.jpg"))

    [again] = events()
    assert (first_written, stack.read_json(detail["manifest_key"])["generated_at"]) == (
        "2026-12-05T18:59:59+00:00",
        "2026-12-05T19:00:00+00:00",
    )
    assert again["detail"]["event_id"] == detail["event_id"]
    assert again["detail"]["counts"]["existing"] == 2
    assert again["detail"]["cost_usd"] == 0
    assert stack.stats()["billed"] == 2


def test_a_new_outcome_gets_a_new_event_id(stack: Stack, events: Events):
    stack.put_image("uploads/a.jpg")
    stack.put("uploads/a.jpg.reframe.json", SIDECAR)
    stack.invoke(s3_event("uploads/a.jpg"))
    stack.put_image("uploads/a.jpg", "astronaut.png")  # new content, new ETag
    stack.invoke(s3_event("uploads/a.jpg"))

    first, second = (event["detail"] for event in events())
    assert first["source"]["etag"] != second["source"]["etag"]
    assert first["event_id"] != second["event_id"]


def test_a_regenerated_variant_gets_a_new_event_id(stack: Stack, events: Events):
    """The gallery's regenerate writes a new seed for one target: its new image, under the same key, is news."""
    stack.put_image("uploads/r.jpg")
    stack.put("uploads/r.jpg.reframe.json", SIDECAR)
    stack.invoke(s3_event("uploads/r.jpg"))
    asked = regenerate(stack.s3, BUCKET, Settings.from_env(), "uploads/r.jpg", "og")
    stack.invoke(s3_event(asked.sidecar_key))

    first, second = (event["detail"] for event in events())
    assert {v["name"]: v["status"] for v in second["variants"]} == {"1024x1024": "existing", "og": "created"}
    assert [v["key"] for v in second["variants"]] == [v["key"] for v in first["variants"]]
    assert second["event_id"] != first["event_id"]


def test_an_invalid_sidecar_is_announced_as_failed(stack: Stack, events: Events):
    stack.put_image("uploads/b.jpg")
    stack.put("uploads/b.jpg.reframe.json", {"version": 1, "targets": [{"resolution": "7x7"}]})

    stack.invoke(s3_event("uploads/b.jpg"))

    [event] = events()
    assert event["detail"]["status"] == "failed"
    assert event["detail"]["counts"]["failed"] == 1
    assert event["detail"]["variants"][0]["error_code"] == "invalid_sidecar"
    assert event["detail"]["cost_usd"] == 0


def test_a_deleted_source_is_announced_once(stack: Stack, events: Events):
    stack.put_image("uploads/c.jpg")
    stack.put("uploads/c.jpg.reframe.json", SIDECAR)
    stack.invoke(s3_event("uploads/c.jpg"))
    events()
    stack.s3.delete_object(Bucket="reframe-test", Key="uploads/c.jpg")

    stack.invoke(s3_event("uploads/c.jpg", "ObjectRemoved:Delete"))
    stack.invoke(s3_event("uploads/c.jpg", "ObjectRemoved:Delete"))  # redelivered: nothing left to remove

    [event] = events()
    assert event["detail-type"] == "Reframe Variants Removed"
    detail = event["detail"]
    assert detail["status"] == "removed"
    assert sorted(v["key"] for v in detail["variants"]) == [
        "reframed/c.jpg/1024x1024.jpg",
        "reframed/c.jpg/og.jpg",
    ]
    assert detail["counts"]["removed"] == 2


def test_a_notice_that_cannot_be_put_is_logged_and_counted_not_retried(
    stack: Stack, events: Events, logs: io.StringIO, capsys: pytest.CaptureFixture[str]
):
    stack.configure(EVENT_BUS_NAME="no-such-bus")
    stack.put_image("uploads/d.jpg")
    stack.put("uploads/d.jpg.reframe.json", SIDECAR)

    result = stack.invoke(s3_event("uploads/d.jpg"))

    assert result.get("batchItemFailures", []) == []
    assert stack.outputs("reframed/d.jpg/") == [
        "reframed/d.jpg/1024x1024.jpg",
        "reframed/d.jpg/manifest.json",
        "reframed/d.jpg/og.jpg",
    ]
    [line] = lines(logs, "notice not published")
    assert line["level"] == "ERROR" and "no-such-bus" in line["error"]
    assert counted(capsys.readouterr().out, "NoticeFailures") == 1
    assert events() == []
