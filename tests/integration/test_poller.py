"""The local SQS poller keeps Lambda's partial-batch semantics: what failed goes back to the queue
(and to the DLQ after enough receives), what succeeded is deleted."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import Any
from urllib.parse import unquote_plus

import pytest

from reframe_local import servers
from reframe_local.moto_stack import Wiring, queue_depth, wire_bucket
from reframe_local.poller import BatchReport, Poller, lambda_event
from reframe_pipeline import handler

from ..waiting import wait_until
from .conftest import IMAGES

BUCKET = "poller-test"
SIDECAR = json.dumps({"version": 1, "targets": [{"resolution": "1024x1024"}]}).encode()
MAX_RECEIVES = 2


def body_keys(message: dict[str, Any]) -> list[str]:
    records = json.loads(message["Body"]).get("Records", [])
    return [unquote_plus(r["s3"]["object"]["key"]) for r in records]


class Recorder:
    def __init__(self) -> None:
        self.reports: list[BatchReport] = []
        self._lock = threading.Lock()

    def __call__(self, report: BatchReport) -> None:
        with self._lock:
            self.reports.append(report)

    def handled(self, key: str) -> list[tuple[str, bool]]:
        """(ApproximateReceiveCount, failed) for each time a message about ``key`` was handled."""
        with self._lock:
            return [
                (m["Attributes"]["ApproximateReceiveCount"], m["MessageId"] in r.failed)
                for r in self.reports
                for m in r.messages
                if key in body_keys(m)
            ]


@pytest.fixture
def wired(
    aws_env: str, moto_reset: servers.ServerProcess, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Any, Any, Wiring]]:
    # A provider that cannot be reached, tried once: every record with targets fails transiently.
    monkeypatch.setenv("REFRAME_PROVIDER", "segmind")
    monkeypatch.setenv("SEGMIND_API_URL", f"http://127.0.0.1:{servers.free_port()}/v1/ideogram-3-reframe")
    monkeypatch.setenv("SEGMIND_API_KEY", "unused")
    monkeypatch.setenv("MAX_ATTEMPTS", "1")
    handler.reset()
    s3, sqs = servers.client("s3", aws_env), servers.client("sqs", aws_env)
    wiring = wire_bucket(
        s3,
        sqs,
        BUCKET,
        input_prefix="uploads/",
        retry_delay_s=1,
        max_receives=MAX_RECEIVES,
        seed={"uploads/configured/_reframe.json": SIDECAR},
    )
    yield s3, sqs, wiring
    handler.reset()


def test_failed_records_return_until_dead_lettered_and_successes_are_deleted(
    wired: tuple[Any, Any, Wiring],
) -> None:
    s3, sqs, wiring = wired
    recorder = Recorder()
    poller = Poller(
        sqs, wiring.queue_url, wiring.queue_arn, handler.lambda_handler,
        workers=2, context_timeout_s=120, retry_delay_s=wiring.retry_delay_s, on_batch=recorder,
    )  # fmt: skip
    image = (IMAGES / "rocket.jpg").read_bytes()
    failing, succeeding = "uploads/configured/rocket.jpg", "uploads/plain/rocket.jpg"
    s3.put_object(Bucket=BUCKET, Key=failing, Body=image)  # configured: calls the provider, fails
    s3.put_object(Bucket=BUCKET, Key=succeeding, Body=image)  # no configuration: left alone, a success
    poller.start()
    try:
        wait_until(lambda: queue_depth(sqs, wiring.dlq_url) == 1, 30, "the message in the dead-letter queue")
    finally:
        poller.stop()

    assert recorder.handled(succeeding) == [("1", False)]
    assert recorder.handled(failing) == [(str(n), True) for n in range(1, MAX_RECEIVES + 1)]
    assert all(r.error is None for r in recorder.reports)
    assert queue_depth(sqs, wiring.queue_url) == 0
    dead = sqs.receive_message(QueueUrl=wiring.dlq_url, WaitTimeSeconds=1)["Messages"]
    assert [body_keys(m) for m in dead] == [[failing]]
    manifest = json.loads(
        s3.get_object(Bucket=BUCKET, Key="reframed/configured/rocket.jpg/manifest.json")["Body"].read()
    )
    assert [v["status"] for v in manifest["variants"]] == ["failed"]


def test_a_raising_handler_fails_the_whole_batch(wired: tuple[Any, Any, Wiring]) -> None:
    _, sqs, wiring = wired

    def broken(event: dict[str, Any], context: Any) -> dict[str, Any]:
        raise RuntimeError("cold start failed")

    poller = Poller(sqs, wiring.queue_url, wiring.queue_arn, broken, retry_delay_s=30)
    report = poller.poll_once()  # the s3:TestEvent the notification configuration sent

    assert report is not None and isinstance(report.error, RuntimeError)
    assert report.failed == {m["MessageId"] for m in report.messages}
    assert queue_depth(sqs, wiring.queue_url) == 1  # hidden for the retry delay, not deleted


def test_lambda_event_shape() -> None:
    message = {
        "MessageId": "id-1",
        "ReceiptHandle": "rh-1",
        "Body": "{}",
        "MD5OfBody": "99914b932bd37a50b983c5e7c90ae93b",
        "Attributes": {"ApproximateReceiveCount": "3"},
        "MessageAttributes": {"trace": {"StringValue": "abc", "DataType": "String"}},
    }
    record = lambda_event([message], "arn:aws:sqs:us-east-1:000000000000:q")["Records"][0]
    assert record == {
        "messageId": "id-1",
        "receiptHandle": "rh-1",
        "body": "{}",
        "attributes": {"ApproximateReceiveCount": "3"},
        "messageAttributes": {"trace": {"stringValue": "abc", "dataType": "String"}},
        "md5OfBody": "99914b932bd37a50b983c5e7c90ae93b",
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:000000000000:q",
        "awsRegion": "us-east-1",
    }
