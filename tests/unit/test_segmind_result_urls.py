"""Segmind v1 answering JSON with the image's URL: the URL is a ticket. It is journaled before the download, and a
download that fails is retried (in this receive, and from the journal on a redelivery), never paid for again."""

from __future__ import annotations

import io
import json
from collections import deque
from typing import Any

import pytest
import requests
from PIL import Image

from reframe_pipeline.adapters.providers.limiter import AimdLimiter
from reframe_pipeline.adapters.providers.retrying import RetryPolicy
from reframe_pipeline.adapters.providers.segmind import SegmindProvider
from reframe_pipeline.application.deadline import Deadline
from reframe_pipeline.application.source_image import SourceImage
from reframe_pipeline.application.values import GenerationParams, ReframeRequest, Ticket
from reframe_pipeline.domain.errors import ProviderTransientError
from reframe_pipeline.domain.resolutions import Size

URL = "https://api.segmind.example/v1/ideogram-3-reframe"
RESULT = "https://cdn.segmind.example/results/1.png"
SIZE = Size(1024, 1024)


def answer(status: int, body: bytes | dict[str, Any], content_type: str = "application/json") -> requests.Response:
    response = requests.Response()
    response.status_code = status
    response._content = body if isinstance(body, bytes) else json.dumps(body).encode()
    response.headers["Content-Type"] = content_type
    return response


def png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (SIZE.width, SIZE.height), "teal").save(out, "PNG", compress_level=1)
    return out.getvalue()


class Session:
    """Segmind's v1 answering with a result URL, and that URL's host answering from a script."""

    def __init__(self, downloads: list[int]) -> None:
        self.downloads = deque(downloads)
        self.posts = 0
        self.gets: list[tuple[str, dict[str, str]]] = []

    def post(self, url: str, **_: Any) -> requests.Response:
        self.posts += 1
        return answer(200, {"image": RESULT, "seed": 7})

    def get(self, url: str, headers: dict[str, str] | None = None, **_: Any) -> requests.Response:
        self.gets.append((url, headers or {}))
        status = self.downloads.popleft() if self.downloads else 200
        return answer(status, png(), "image/png") if status == 200 else answer(status, {"error": "unavailable"})


class Meter:
    def __init__(self) -> None:
        self.charged = 0
        self.tickets: list[Ticket | None] = []

    def charge(self) -> Any:
        self.charged += 1
        return lambda: None

    def submitted(self, ticket: Ticket | None) -> None:
        self.tickets.append(ticket)


def segmind(session: Session) -> SegmindProvider:
    return SegmindProvider(
        mode="sync",
        url=URL,
        api_key=lambda: "sk-key",
        session=session,
        policy=RetryPolicy(max_attempts=4, base_s=0.0, max_s=0.0),
        min_remaining_ms=0,
        reserve_ms=0,
        limiter=AimdLimiter(),
    )


def request(meter: Meter, resume: Ticket | None = None) -> ReframeRequest:
    source = SourceImage("https://bucket.example/p.png", lambda: b"")
    return ReframeRequest(source, SIZE, GenerationParams(), Deadline(), meter, resume)


def test_a_result_url_that_answers_503_is_downloaded_again_not_generated_again() -> None:
    session, meter = Session(downloads=[503]), Meter()

    result = segmind(session).reframe(request(meter))

    assert result.seed == 7 and result.body == png()
    assert (session.posts, meter.charged) == (1, 1)
    assert [ticket.result_url for ticket in meter.tickets if ticket] == [RESULT]  # journaled before the download
    assert all("x-api-key" not in headers for _, headers in session.gets)  # the key stays with the API host


def test_a_result_url_that_keeps_failing_costs_one_generation_and_is_collected_on_redelivery() -> None:
    session, meter = Session(downloads=[503] * 4), Meter()
    with pytest.raises(ProviderTransientError) as failed:
        segmind(session).reframe(request(meter))
    assert failed.value.code == "result_fetch"
    assert (session.posts, meter.charged, len(session.gets)) == (1, 1, 4)  # 4 downloads, 1 generation
    (ticket,) = meter.tickets

    redelivered = Meter()
    segmind(session).reframe(request(redelivered, resume=ticket))  # the journal's ticket

    assert (session.posts, redelivered.charged) == (1, 0)
