"""Every failure the operator must act on leaves an ERROR line that names the object, and a metric."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest

from reframe_pipeline.adapters.inbound.s3_events import MalformedEventError

from .conftest import BUCKET, Stack, s3_event, sqs_event

KEY = "uploads/logs/photo.jpg"
SIDECAR = {"version": 1, "targets": [{"resolution": "1536x640"}, {"preset": "instagram-story"}]}


def logged(logs: io.StringIO) -> list[dict[str, Any]]:
    """The handler's JSON log lines."""
    return [json.loads(line) for line in logs.getvalue().splitlines() if line.startswith("{")]


def lines(logs: io.StringIO, message: str) -> list[dict[str, Any]]:
    return [line for line in logged(logs) if line.get("message") == message]


def counted(printed: str, metric: str) -> float:
    """The metric's total in the EMF blobs printed (pytest's capture takes stdout back from `logs`)."""
    blobs = [json.loads(line) for line in printed.splitlines() if line.startswith('{"_aws"')]
    return sum(sum(blob[metric]) for blob in blobs if metric in blob)


@pytest.fixture
def configured(stack: Stack) -> Stack:
    stack.put_image(KEY)
    stack.put(KEY + ".reframe.json", SIDECAR)
    return stack


def test_an_unexpected_record_failure_is_logged_once_at_error_with_its_message_id_bucket_and_key(
    configured: Stack, logs: io.StringIO, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
):
    # What a deployed function meets when its role or credentials are wrong: every AWS call fails.
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    configured.configure()

    result = configured.invoke(sqs_event(s3_event(KEY)))

    assert result == {"batchItemFailures": [{"itemIdentifier": "m-0"}]}
    [line] = lines(logs, "record failed: it will be retried")
    assert line["level"] == "ERROR"
    assert (line["message_id"], line["bucket"], line["key"]) == ("m-0", BUCKET, KEY)
    assert "NoCredentialsError" in line["exception"]  # the traceback, for a failure nobody expected
    assert counted(capsys.readouterr().out, "RecordsFailed") == 1


def test_variants_refused_for_lack_of_time_say_so_and_their_record_goes_back(configured: Stack, logs: io.StringIO):
    # Less than CALL_BUDGET_MS + UPLOAD_RESERVE_MS (65 s) left: no call may start.
    result = configured.invoke(sqs_event(s3_event(KEY)), timeout_s=30)

    assert result == {"batchItemFailures": [{"itemIdentifier": "m-0"}]}
    failed = lines(logs, "variant failed")
    assert sorted(line["target"] for line in failed) == ["1536x640", "instagram-story"]
    assert {line["error_code"] for line in failed} == {"deadline"}
    [record] = lines(logs, "record failed: it will be retried")
    assert record["level"] == "ERROR" and record["key"] == KEY
    assert "2 variant(s) to retry" in record["error"]
    assert "exception" not in record  # an expected failure, explained by the lines above: no traceback
    assert configured.stats()["requests"] == 0


def test_a_malformed_direct_event_is_logged_and_counted_before_it_raises(
    stack: Stack, logs: io.StringIO, recwarn: pytest.WarningsRecorder, capsys: pytest.CaptureFixture[str]
):
    with pytest.raises(MalformedEventError):
        stack.invoke({"detail-type": "something else"})

    [line] = lines(logs, "malformed event refused")
    assert line["level"] == "ERROR"
    assert "neither 'Records' nor an EventBridge 'detail'" in line["error"]
    assert counted(capsys.readouterr().out, "MalformedEvents") == 1
    assert not [w for w in recwarn if "No application metrics" in str(w.message)]
