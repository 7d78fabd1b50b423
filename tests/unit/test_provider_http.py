import base64
import io
import json
from collections.abc import Callable

import pytest
import requests
from PIL import Image

from reframe_pipeline.adapters.providers.limiter import AimdLimiter
from reframe_pipeline.adapters.providers.responses import classify, decode_image_response, retry_after_seconds
from reframe_pipeline.adapters.providers.retrying import CallPlan, RetryPolicy, call_with_retries
from reframe_pipeline.application.deadline import Deadline
from reframe_pipeline.application.values import ReframeResult
from reframe_pipeline.domain.errors import (
    DeadlineError,
    ProviderAccountError,
    ProviderRejectedError,
    ProviderTransientError,
)
from reframe_pipeline.domain.resolutions import Size


def response(status=200, body=b"", content_type="application/json", headers=None):
    r = requests.Response()
    r.status_code = status
    r._content = body if isinstance(body, bytes) else json.dumps(body).encode()
    r.headers.update({"Content-Type": content_type, **(headers or {})})
    return r


def png(size=(64, 32)):
    out = io.BytesIO()
    Image.new("RGB", size, "teal").save(out, "PNG")
    return out.getvalue()


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (400, ProviderRejectedError),
        (422, ProviderRejectedError),
        (401, ProviderAccountError),
        (403, ProviderAccountError),
        (404, ProviderAccountError),
        (406, ProviderAccountError),
        (429, ProviderTransientError),
        (500, ProviderTransientError),
        (502, ProviderTransientError),
        (503, ProviderTransientError),
        (504, ProviderTransientError),
    ],
)
def test_classification(status, kind):
    error = classify(response(status, {"error": "nope"}), secret=None)
    assert type(error) is kind
    assert error.status == status
    assert "nope" in error.message


def test_error_messages_never_carry_the_key():
    error = classify(response(401, {"error": "invalid key sk-SECRET-123"}), secret="sk-SECRET-123")
    assert "sk-SECRET-123" not in error.message
    assert "***" in error.message


def test_html_error_bodies_are_summarised():
    error = classify(response(502, b"<html>\n<body>Bad   gateway</body></html>", "text/html"), None)
    assert "Bad gateway" in error.message


def test_retry_after_forms():
    assert retry_after_seconds("3") == 3
    assert retry_after_seconds(None) is None
    assert retry_after_seconds("soon") is None
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT") == 0  # in the past
    error = classify(response(429, {"error": "slow down"}, headers={"Retry-After": "2"}), None)
    assert error.retry_after == 2


def test_decode_image_bytes_whatever_the_content_type():
    body, mime = decode_image_response(
        response(200, png(), "application/octet-stream"), Size(64, 32), requests.Session(), (1, 1)
    )
    assert mime == "image/png" and body.startswith(b"\x89PNG")


def test_decode_base64_json():
    document = {"image": base64.b64encode(png()).decode(), "status": "ok"}
    body, _ = decode_image_response(response(200, document), Size(64, 32), requests.Session(), (1, 1))
    assert body == png()


@pytest.mark.parametrize(
    ("body", "content_type", "code"),
    [
        (b"\x89PNG\r\n\x1a\ngarbage", "image/png", "bad_image"),
        (png()[: len(png()) // 2], "image/png", "bad_image"),
        (b"hello", "text/plain", "bad_image"),
        (b"{not json", "application/json", "bad_body"),
        ({"status": "done"}, "application/json", "bad_body"),
    ],
)
def test_bad_bodies_are_transient(body, content_type, code):
    with pytest.raises(ProviderTransientError) as caught:
        decode_image_response(response(200, body, content_type), Size(64, 32), requests.Session(), (1, 1))
    assert caught.value.code == code


def test_wrong_dimensions_are_refused():
    with pytest.raises(ProviderTransientError, match="expected 100x100"):
        decode_image_response(response(200, png(), "image/png"), Size(100, 100), requests.Session(), (1, 1))


FAST = RetryPolicy(max_attempts=3, base_s=0.0, max_s=0.0)


def plan(deadline=None, min_remaining_ms=0):
    return CallPlan(
        policy=FAST, deadline=deadline or Deadline(), min_remaining_ms=min_remaining_ms, reserve_ms=0, provider="p"
    )


def scripted(outcomes: list) -> Callable[[object], ReframeResult]:
    """A send that raises each failure of ``outcomes`` in turn and answers an image for each None."""

    def send(timeout: object) -> ReframeResult:
        failure = outcomes.pop(0)
        if failure:
            raise failure
        return ReframeResult(body=b"img", content_type="image/png")

    return send


def test_retries_then_succeeds():
    outcomes = [ProviderTransientError("busy", code="http_429"), ProviderTransientError("x"), None]

    send = scripted(outcomes)

    call_with_retries(send, plan(), AimdLimiter())
    assert outcomes == []


def test_permanent_errors_are_not_retried():
    calls = []

    def send(timeout):
        calls.append(1)
        raise ProviderRejectedError("bad", status=400)

    with pytest.raises(ProviderRejectedError):
        call_with_retries(send, plan(), AimdLimiter())
    assert len(calls) == 1


def test_gives_up_after_max_attempts():
    calls = []

    def send(timeout):
        calls.append(1)
        raise requests.ConnectionError("refused")

    with pytest.raises(ProviderTransientError, match="ConnectionError"):
        call_with_retries(send, plan(), AimdLimiter())
    assert len(calls) == 3


def test_no_retry_past_the_deadline():
    def send(timeout):
        raise ProviderTransientError("busy", retry_after=30)

    with pytest.raises(DeadlineError, match="not retrying"):
        call_with_retries(send, plan(Deadline(lambda: 20_000)), AimdLimiter())


def test_each_429_is_counted_for_the_dashboard(monkeypatch):
    import reframe_pipeline.adapters.providers.retrying as http

    counted = []
    monkeypatch.setattr(http, "count", lambda name, value=1: counted.append(name))
    outcomes = [ProviderTransientError("busy", status=429), ProviderTransientError("down", status=503), None]

    send = scripted(outcomes)

    call_with_retries(send, plan(), AimdLimiter())
    assert counted.count("ProviderThrottled") == 1  # the 503 is a retry, not a throttle
    counted.clear()
    outcomes[:] = [ProviderTransientError("busy", status=429), None]
    call_with_retries(send, CallPlan(FAST, Deadline(), 0, 0, provider="webhook", throttled_metric=None), AimdLimiter())
    assert "ProviderThrottled" not in counted
