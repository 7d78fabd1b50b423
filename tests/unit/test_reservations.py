"""Money is reserved only for a request that is sent: Ideogram's style references are fetched before an attempt's
cost is reserved, so a reference that is missing, or whose host does not resolve, spends nothing."""

from __future__ import annotations

import socket
from typing import Any

import pytest

from reframe_pipeline.adapters.providers.ideogram import IdeogramProvider
from reframe_pipeline.adapters.providers.limiter import AimdLimiter
from reframe_pipeline.adapters.providers.retrying import RetryPolicy
from reframe_pipeline.application.deadline import Deadline
from reframe_pipeline.application.source_image import SourceImage
from reframe_pipeline.application.values import GenerationParams, ReframeRequest, Ticket
from reframe_pipeline.domain.errors import PermanentError, ProviderTransientError
from reframe_pipeline.domain.resolutions import Size
from tests.unit.test_ideogram import STORAGE, FakeSession, image, response

RESULT = "https://results.ideogram.example/1.png"


class Meter:
    """Reservations minus refunds: what the day's budget would show."""

    def __init__(self) -> None:
        self.reserved = 0

    def charge(self) -> Any:
        self.reserved += 1

        def refund() -> None:
            self.reserved -= 1

        return refund

    def submitted(self, ticket: Ticket | None) -> None:
        return None


class Session(FakeSession):
    """GETs from the table (style references, the result); POSTs to Ideogram counted and answered."""

    def __init__(self, answers: dict[str, Any]) -> None:
        super().__init__(answers)
        self.posts = 0

    def post(self, url: str, **_: Any) -> Any:
        self.posts += 1
        return response(200, {"data": [{"url": RESULT, "seed": 1, "is_image_safe": True}]})


def ideogram(session: Session) -> IdeogramProvider:
    return IdeogramProvider(
        url="https://api.ideogram.example/v1/ideogram-v3/reframe",
        api_key=lambda: "k",
        session=session,
        policy=RetryPolicy(max_attempts=4, base_s=0.0, max_s=0.0),
        min_remaining_ms=0,
        reserve_ms=0,
        limiter=AimdLimiter(),
        storage_endpoint=STORAGE,
    )


def request(meter: Meter, reference: str) -> ReframeRequest:
    source = SourceImage("s3://unused", lambda: image("JPEG"))
    params = GenerationParams(style_reference_urls=(reference,))
    return ReframeRequest(source, Size(64, 32), params, Deadline(), meter)


def test_a_missing_style_reference_reserves_nothing() -> None:
    missing = f"{STORAGE}/bucket/styles/missing.png"
    session, meter = Session({missing: response(404, b"NoSuchKey")}), Meter()

    with pytest.raises(PermanentError) as failed:
        ideogram(session).reframe(request(meter, missing))

    assert failed.value.code == "bad_style_reference"
    assert (meter.reserved, session.posts) == (0, 0)


def test_a_reference_host_that_does_not_resolve_reserves_nothing_however_often_tried(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def resolver_down(*args: Any, **kwargs: Any) -> Any:
        raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")

    monkeypatch.setattr(socket, "getaddrinfo", resolver_down)
    session, meter = Session({}), Meter()

    with pytest.raises(ProviderTransientError):
        ideogram(session).reframe(request(meter, "https://styles.example.com/a.png"))

    assert (meter.reserved, session.posts) == (0, 0)


def test_a_request_that_is_sent_is_reserved_once_with_its_references_in_hand() -> None:
    reference = f"{STORAGE}/bucket/styles/a.png"
    session, meter = Session({reference: response(200, image()), RESULT: response(200, image())}), Meter()

    ideogram(session).reframe(request(meter, reference))

    assert (meter.reserved, session.posts) == (1, 1)
    assert session.requested == [reference, RESULT]
