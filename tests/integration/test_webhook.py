"""The signed webhook: the same notice POSTed to a local receiver (allowed by the test-only setting),
checked there with the standardwebhooks library's own verifier; a replayed or tampered delivery fails it;
a failing receiver never fails or repeats the paid work."""

from __future__ import annotations

import io
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import standardwebhooks.webhooks
from standardwebhooks import Webhook
from standardwebhooks.exceptions import WebhookVerificationError

from reframe_local import servers

from ..waiting import wait_until
from .aws_faults import AwsFaults
from .conftest import Stack, s3_event
from .test_failure_logs import counted, lines

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SCHEMA = json.loads((Path(__file__).resolve().parents[2] / "schemas" / "notice.schema.json").read_text())
SIDECAR = {"version": 1, "targets": [{"resolution": "1024x1024"}]}


@dataclass
class Receiver:
    url: str
    deliveries: list[tuple[bytes, dict[str, str]]] = field(default_factory=list)
    failures_left: int = 0  # answer 503 to this many requests first
    status: int = 204  # the answer to the others

    def verified(self) -> list[dict[str, Any]]:
        return [Webhook(SECRET).verify(body, headers) for body, headers in self.deliveries]


@pytest.fixture
def receiver(stack: Stack) -> Iterator[Receiver]:
    state = Receiver(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["content-length"]))
            failing = state.failures_left > 0
            state.failures_left -= failing
            if not failing:
                state.deliveries.append((body, {k.lower(): v for k, v in self.headers.items()}))
            self.send_response(503 if failing else state.status)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/reframe"
    stack.configure(WEBHOOK_URL=state.url, WEBHOOK_SECRET=SECRET, WEBHOOK_ALLOW_LOOPBACK_FOR_TESTS="true")
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_the_notice_arrives_signed_and_verifies(stack: Stack, receiver: Receiver):
    stack.put_image("uploads/w.jpg")
    stack.put("uploads/w.jpg.reframe.json", SIDECAR)

    stack.invoke(s3_event("uploads/w.jpg"))

    [payload] = receiver.verified()
    assert payload["type"] == "reframe.variants.ready"
    jsonschema.validate(payload["data"], SCHEMA)
    assert payload["data"]["status"] == "completed"
    [(_, headers)] = receiver.deliveries
    assert headers["webhook-id"] == payload["data"]["event_id"]  # receivers de-duplicate on it


def test_a_replayed_or_tampered_delivery_is_rejected(stack: Stack, receiver: Receiver, monkeypatch: pytest.MonkeyPatch):
    stack.put_image("uploads/w.jpg")
    stack.put("uploads/w.jpg.reframe.json", SIDECAR)
    stack.invoke(s3_event("uploads/w.jpg"))
    [(body, headers)] = receiver.deliveries
    verifier = Webhook(SECRET)

    tampered = body.replace(b'"completed"', b'"failed"')
    with pytest.raises(WebhookVerificationError):
        verifier.verify(tampered, headers)
    refreshed = {**headers, "webhook-timestamp": str(int(headers["webhook-timestamp"]) + 400)}
    with pytest.raises(WebhookVerificationError):  # a new timestamp on the old signature
        verifier.verify(body, refreshed)

    class SixMinutesLater(datetime):
        @classmethod
        def now(cls, tz: Any = None) -> Any:
            return datetime.now(tz) + timedelta(minutes=6)

    monkeypatch.setattr(standardwebhooks.webhooks, "datetime", SixMinutesLater)
    with pytest.raises(WebhookVerificationError, match="too old"):  # the same delivery, replayed later
        verifier.verify(body, headers)


def test_a_receiver_failing_at_first_gets_the_notice_on_a_retry(
    stack: Stack, receiver: Receiver, capsys: pytest.CaptureFixture[str]
):
    receiver.failures_left = 2
    stack.put_image("uploads/w.jpg")
    stack.put("uploads/w.jpg.reframe.json", SIDECAR)

    stack.invoke(s3_event("uploads/w.jpg"))

    assert len(receiver.verified()) == 1
    assert receiver.failures_left == 0
    printed = capsys.readouterr().out
    assert counted(printed, "WebhookRetries") == 2
    assert counted(printed, "ProviderRetries") == 0


def test_a_failing_receiver_is_logged_and_counted_and_costs_nothing_more(
    stack: Stack, receiver: Receiver, capsys: pytest.CaptureFixture[str]
):
    receiver.failures_left = 100
    stack.put_image("uploads/w.jpg")
    stack.put("uploads/w.jpg.reframe.json", SIDECAR)

    result = stack.invoke(s3_event("uploads/w.jpg"))

    assert result.get("batchItemFailures", []) == []
    assert receiver.deliveries == []
    assert 100 - receiver.failures_left == 4  # MAX_ATTEMPTS
    assert counted(capsys.readouterr().out, "WebhookFailures") == 1
    assert stack.stats()["billed"] == 1
    assert "reframed/w.jpg/manifest.json" in stack.keys("reframed/")


@pytest.mark.parametrize("status", [200, 202, 204])
def test_every_success_answer_is_a_delivery(
    stack: Stack, receiver: Receiver, logs: io.StringIO, capsys: pytest.CaptureFixture[str], status: int
):
    receiver.status = status
    stack.put_image("uploads/w.jpg")
    stack.put("uploads/w.jpg.reframe.json", SIDECAR)

    stack.invoke(s3_event("uploads/w.jpg"))

    assert len(receiver.verified()) == 1  # once: a success is not retried
    assert len(lines(logs, "webhook delivered")) == 1
    assert lines(logs, "webhook not delivered") == []
    assert counted(capsys.readouterr().out, "WebhookFailures") == 0


def test_an_unreadable_webhook_secret_loses_the_notice_only(
    stack: Stack,
    receiver: Receiver,
    aws_faults: AwsFaults,
    aws_env: str,
    logs: io.StringIO,
    capsys: pytest.CaptureFixture[str],
):
    secrets = servers.client("secretsmanager", aws_env)
    arn = secrets.create_secret(Name="reframe/webhook", SecretString=SECRET)["ARN"]
    stack.monkeypatch.delenv("WEBHOOK_SECRET")
    stack.configure(WEBHOOK_SECRET_ARN=arn)
    aws_faults.fail("secretsmanager", "GetSecretValue", code="AccessDeniedException")
    stack.put_image("uploads/w.jpg")
    stack.put("uploads/w.jpg.reframe.json", SIDECAR)

    results = [stack.invoke(s3_event("uploads/w.jpg")) for _ in range(2)]

    assert [r.get("batchItemFailures", []) for r in results] == [[], []]
    assert receiver.deliveries == []
    [line, _] = lines(logs, "webhook not delivered")
    assert "reframe/webhook" in line["error"] or "AccessDenied" in line["error"]
    assert counted(capsys.readouterr().out, "WebhookFailures") == 2
    assert stack.stats()["billed"] == 1  # the second receive found the variant made: nothing paid again


def test_a_redelivery_in_a_later_second_keeps_the_event_id(stack: Stack, receiver: Receiver):
    stack.put_image("uploads/w.jpg")
    stack.put("uploads/w.jpg.reframe.json", SIDECAR)
    stack.invoke(s3_event("uploads/w.jpg"))
    first_second = int(time.time())
    wait_until(lambda: int(time.time()) > first_second, 2, "the clock to pass a second boundary")

    stack.invoke(s3_event("uploads/w.jpg"))  # the same outcome: the variant is there

    first, second = receiver.verified()
    assert (first["data"]["counts"]["created"], second["data"]["counts"]["existing"]) == (1, 1)
    assert first["timestamp"] != second["timestamp"]
    assert second["data"]["event_id"] == first["data"]["event_id"]
    assert [headers["webhook-id"] for _, headers in receiver.deliveries] == [first["data"]["event_id"]] * 2
