"""The seed a variant was made with is recorded: the sidecar's, else the one Segmind reports if it does."""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests

from reframe_pipeline.adapters.providers.segmind import _seed_used
from reframe_pipeline.application.deadline import Deadline
from reframe_pipeline.application.source_image import SourceImage
from reframe_pipeline.application.values import GenerationParams, ReframeRequest
from reframe_pipeline.domain.resolutions import Size


def request(seed: int | None) -> ReframeRequest:
    source = SourceImage("https://s.example/p.png", lambda: b"")
    return ReframeRequest(source, Size(1024, 1024), GenerationParams(seed=seed), Deadline())


def answer(document: Any, content_type: str = "application/json") -> requests.Response:
    response = requests.Response()
    response.status_code = 200
    response.headers["Content-Type"] = content_type
    response._content = json.dumps(document).encode()
    return response


@pytest.mark.parametrize(
    ("document", "seed"),
    [
        ({"output": "https://r.example/i.png", "seed": 31337}, 31337),
        ({"output": "https://r.example/i.png", "metrics": {"seed": 808}}, 808),
        ({"output": "https://r.example/i.png"}, None),
        ({"seed": "31337"}, None),  # not a number: not trusted
        ({"seed": True}, None),
        ({"seed": -1}, None),
        (["not", "an", "object"], None),
    ],
)
def test_the_reported_seed_is_taken_when_the_sidecar_set_none(document: Any, seed: int | None) -> None:
    assert _seed_used(request(None), answer(document)) == seed


def test_the_sidecar_seed_wins_and_image_bytes_report_none() -> None:
    assert _seed_used(request(4242), answer({"seed": 1})) == 4242
    assert _seed_used(request(None), answer({"seed": 1}, content_type="image/png")) is None
