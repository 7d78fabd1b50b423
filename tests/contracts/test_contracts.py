"""The provider clients' requests and the emulator's answers, held to the official contracts.

Each scenario runs a real client against the emulator through a session that records every exchange;
each exchange with the emulator's API is then checked against the OpenAPI document of its provider
(its result-file URLs are storage, not API). A scenario checks at least one exchange, so none passes empty.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, get_args

import pytest
import requests
from jsonschema import Draft202012Validator
from requests.adapters import HTTPAdapter

from reframe_local.emulator.api import IDEOGRAM_MAX_REFERENCES_BYTES
from reframe_local.servers import ServerProcess
from reframe_pipeline.adapters.providers.ideogram import MAX_REFERENCES_BYTES, IdeogramProvider
from reframe_pipeline.adapters.providers.limiter import AimdLimiter
from reframe_pipeline.adapters.providers.remote import RemoteProvider
from reframe_pipeline.adapters.providers.retrying import RetryPolicy
from reframe_pipeline.adapters.providers.segmind import SegmindProvider
from reframe_pipeline.application.deadline import Deadline
from reframe_pipeline.application.source_image import SourceImage
from reframe_pipeline.application.values import GenerationParams, ReframeRequest
from reframe_pipeline.domain.errors import ReframeError
from reframe_pipeline.domain.resolutions import RESOLUTION_NAMES, Size
from reframe_pipeline.domain.sidecar import STYLE_CODE_PATTERN, PaletteName, RenderingSpeed

from ..conftest import EMULATOR_API_KEY, IMAGES
from .openapi import Contract

IDEOGRAM = Contract("ideogram-reframe.openapi.yaml")
SEGMIND = Contract("segmind-reframe.openapi.yaml")
RESULTS_PATH = "/_emulator/results/"

PARAMS = {
    "defaults": GenerationParams(),
    "everything": GenerationParams(
        rendering_speed="TURBO", seed=4242, style_codes=("5A3F09C1", "0b1c2d3e"), color_palette={"name": "PASTEL"}
    ),
    "custom palette": GenerationParams(
        rendering_speed="QUALITY",
        color_palette={
            "members": [{"color_hex": "#1E90FF", "color_weight": 0.6}, {"color_hex": "#ffaa00", "color_weight": 0.4}]
        },
    ),
}


class Recorder(HTTPAdapter):
    """Sends as usual and keeps each (request, response)."""

    def __init__(self) -> None:
        super().__init__(max_retries=0)
        self.exchanges: list[tuple[requests.PreparedRequest, requests.Response]] = []

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> requests.Response:
        response = super().send(request, *args, **kwargs)
        self.exchanges.append((request, response))
        return response


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def session(recorder: Recorder) -> Iterator[requests.Session]:
    with requests.Session() as session:
        session.trust_env = False
        session.mount("http://", recorder)
        yield session


@pytest.fixture
def emu(fresh_emulator: ServerProcess) -> Iterator[str]:
    yield fresh_emulator.url
    requests.post(f"{fresh_emulator.url}/_emulator/reset", timeout=10).raise_for_status()


def admin(emu: str, what: str, **body: Any) -> None:
    requests.post(f"{emu}/_emulator/{what}", json=body, timeout=10).raise_for_status()


def transport(session: requests.Session, key: str) -> dict[str, Any]:
    return {
        "api_key": lambda: key,
        "session": session,
        "policy": RetryPolicy(max_attempts=1, base_s=0),
        "min_remaining_ms": 0,
        "reserve_ms": 0,
        "limiter": AimdLimiter(),
    }


def ideogram(emu: str, files: str, session: requests.Session, key: str = EMULATOR_API_KEY) -> IdeogramProvider:
    # The file server stands for the bucket: style references from it are "ours", as presigned URLs are.
    return IdeogramProvider(url=f"{emu}/v1/ideogram-v3/reframe", storage_endpoint=files, **transport(session, key))


def segmind(emu: str, session: requests.Session, mode: str, key: str = EMULATOR_API_KEY) -> SegmindProvider:
    return SegmindProvider(url=f"{emu}/v1/ideogram-3-reframe", mode=mode, **transport(session, key))  # type: ignore[arg-type]


def reframe(provider: RemoteProvider, files: str, params: GenerationParams) -> bytes:
    source = SourceImage(f"{files}/coffee.png", (IMAGES / "coffee.png").read_bytes)
    return provider.reframe(ReframeRequest(source, Size(1536, 640), params, Deadline())).body


def check_exchanges(contract: Contract, recorder: Recorder, emu: str) -> list[int]:
    """Check every exchange with the emulator's API; returns the statuses checked."""
    checked = []
    for request, response in recorder.exchanges:
        assert request.url and request.method
        if not request.url.startswith(emu) or RESULTS_PATH in request.url:
            continue  # a style reference or a result file: not the API
        contract.check_request(request)
        contract.check_response(request.method, request.url, response)
        checked.append(response.status_code)
    assert checked, "no exchange with the API was recorded"
    return checked


# Successful calls


@pytest.mark.parametrize("params", PARAMS.values(), ids=PARAMS.keys())
def test_ideogram_requests_and_answers(emu: str, files: str, session: requests.Session, recorder: Recorder, params):
    assert reframe(ideogram(emu, files, session), files, params)
    assert check_exchanges(IDEOGRAM, recorder, emu) == [200]


def test_ideogram_style_references(emu: str, files: str, session: requests.Session, recorder: Recorder):
    params = GenerationParams(style_reference_urls=(f"{files}/chelsea.png", f"{files}/rocket.jpg"))
    assert reframe(ideogram(emu, files, session), files, params)
    assert check_exchanges(IDEOGRAM, recorder, emu) == [200]


@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize("params", PARAMS.values(), ids=PARAMS.keys())
def test_segmind_requests_and_answers(
    emu: str, files: str, session: requests.Session, recorder: Recorder, mode: str, params: GenerationParams
):
    params = GenerationParams(**{**vars(params), "style_reference_urls": (f"{files}/chelsea.png",)})
    assert reframe(segmind(emu, session, mode), files, params)
    statuses = check_exchanges(SEGMIND, recorder, emu)
    assert set(statuses) == {200} and (len(statuses) >= 3 if mode == "async" else len(statuses) == 1)


@pytest.mark.parametrize("response_format", ["jpeg", "json-base64", "json-url"])
def test_segmind_v1_answer_forms(
    emu: str, files: str, session: requests.Session, recorder: Recorder, response_format: str
):
    admin(emu, "config", response_format=response_format)
    assert reframe(segmind(emu, session, "sync"), files, GenerationParams())
    assert check_exchanges(SEGMIND, recorder, emu) == [200]


# Error answers: each status the contract lists, as the emulator sends it


@pytest.mark.parametrize(
    ("faults", "statuses"),
    [
        (["400"], [400]),
        (["401"], [401]),
        (["402"], [402]),
        (["402-daily-limit"], [402]),
        (["429"], [429]),
        (["429-date"], [429]),
        (["500"], [500]),
        (["503"], [503]),
    ],
)
def test_ideogram_error_answers(
    emu: str, files: str, session: requests.Session, recorder: Recorder, faults: list[str], statuses: list[int]
):
    admin(emu, "faults", script=faults)
    with pytest.raises(ReframeError):
        reframe(ideogram(emu, files, session), files, GenerationParams())
    assert check_exchanges(IDEOGRAM, recorder, emu) == statuses


def test_ideogram_refused_key(emu: str, files: str, session: requests.Session, recorder: Recorder):
    with pytest.raises(ReframeError):
        reframe(ideogram(emu, files, session, key="wrong-key"), files, GenerationParams())
    assert check_exchanges(IDEOGRAM, recorder, emu) == [401]


@pytest.mark.parametrize(
    ("mode", "faults", "statuses"),
    [
        *(("sync", [kind], [int(kind[:3])]) for kind in ("400", "401", "403", "404", "406", "500", "502", "504")),
        ("sync", ["429"], [429]),
        ("sync", ["429-date"], [429]),
        ("sync", ["429-no-retry-after"], [429]),
        ("sync", ["html-500"], [500]),
        ("async", ["406"], [406]),
        ("async", ["ok", "500"], [200, 500]),  # a failed poll
    ],
)
def test_segmind_error_answers(
    emu: str,
    files: str,
    session: requests.Session,
    recorder: Recorder,
    mode: str,
    faults: list[str],
    statuses: list[int],
):
    admin(emu, "faults", script=faults)
    with pytest.raises(ReframeError):
        reframe(segmind(emu, session, mode), files, GenerationParams())
    assert check_exchanges(SEGMIND, recorder, emu) == statuses


def test_segmind_failed_job_and_model_not_on_v2(emu: str, files: str, session: requests.Session, recorder: Recorder):
    admin(emu, "faults", script=["v2-fail"])
    assert reframe(segmind(emu, session, "async"), files, GenerationParams())  # generated again
    assert 422 in check_exchanges(SEGMIND, recorder, emu)
    recorder.exchanges.clear()
    admin(emu, "config", serve_v2=False)
    assert reframe(segmind(emu, session, "auto"), files, GenerationParams())  # falls back to v1
    assert check_exchanges(SEGMIND, recorder, emu) == [404, 200]


# The checker itself fails on what leaves a contract


def _prepared(url: str, **options: Any) -> requests.PreparedRequest:
    return requests.Request("POST", url, **options).prepare()


IDEOGRAM_URL = "https://api.ideogram.ai/v1/ideogram-v3/reframe"
SEGMIND_URL = "https://api.segmind.com/v1/ideogram-3-reframe"
PNG = (IMAGES / "chelsea.png").read_bytes()


def ideogram_form(**fields: Any) -> requests.PreparedRequest:
    files: list[Any] = [("image", ("i.png", PNG, "image/png"))]
    for name, value in fields.items():
        files += [(name, part) for part in (value if isinstance(value, list) else [value])]
    return _prepared(IDEOGRAM_URL, files=files, headers={"Api-Key": "k"})


def segmind_body(accept: str = "*/*", **fields: Any) -> requests.PreparedRequest:
    body = {"image": "https://bucket.example/a.png", **fields}
    return _prepared(SEGMIND_URL, json=body, headers={"x-api-key": "k", "Accept": accept})


def answer(status: int, body: bytes, content_type: str = "application/json", **headers: str) -> requests.Response:
    response = requests.Response()
    response.status_code = status
    response._content = body
    response.headers.update({"Content-Type": content_type, **headers})
    return response


@pytest.mark.parametrize(
    ("check", "problem"),
    [
        (lambda: SEGMIND.check_request(segmind_body(accept="image/*, application/json")), "header Accept"),
        (lambda: SEGMIND.check_request(segmind_body(style_codes=["Modern"])), "style_codes/0"),
        (lambda: SEGMIND.check_request(segmind_body(seed=99)), "seed"),
        (lambda: SEGMIND.check_request(segmind_body(prompt="a cat")), "prompt"),
        (lambda: IDEOGRAM.check_request(ideogram_form()), "resolution"),
        (
            lambda: IDEOGRAM.check_request(ideogram_form(resolution=(None, "1024x1024"), style_codes=(None, "Modern"))),
            "style_codes/0",
        ),
        (
            lambda: IDEOGRAM.check_request(
                ideogram_form(resolution=(None, "1024x1024"), color_palette=(None, '{"name": "PASTEL"}'))
            ),
            "part color_palette: content type text/plain",
        ),
        (
            lambda: IDEOGRAM.check_request(
                ideogram_form(
                    resolution=(None, "1024x1024"),
                    style_reference_images=[("s.png", PNG + bytes(5_000_000), "image/png")] * 2,
                )
            ),
            "bytes in total, over 10000000",
        ),
        (
            lambda: IDEOGRAM.check_request(
                ideogram_form(
                    resolution=(None, "1024x1024"),
                    style_codes=(None, "5A3F09C1"),
                    style_reference_images=("s.png", PNG, "image/png"),
                )
            ),
            "should not be valid",
        ),
        (
            lambda: IDEOGRAM.check_response("POST", IDEOGRAM_URL, answer(406, b'{"error": "x", "reject_reason": "y"}')),
            "406",
        ),
        (
            lambda: IDEOGRAM.check_response(
                "POST",
                IDEOGRAM_URL,
                answer(429, b'{"error": "x", "reject_reason": "inflight_limit"}', **{"Retry-After": "1"}),
            ),
            "Retry-After",
        ),
        (lambda: IDEOGRAM.check_response("POST", IDEOGRAM_URL, answer(402, b'{"error": "no money"}')), "reject_reason"),
        (
            lambda: IDEOGRAM.check_response(
                "POST",
                IDEOGRAM_URL,
                answer(
                    200,
                    b'{"created": "2026-11-25T00:00:00Z", "data": [{"resolution": "1088x864", "seed": 1, "is_image_safe": true, "url": "https://x/y.png"}]}',
                ),
            ),
            "is not one of",
        ),
        (
            lambda: SEGMIND.check_response("POST", SEGMIND_URL, answer(200, b"not an image", "image/png")),
            "not the image/png",
        ),
    ],
)
def test_the_checker_refuses_what_leaves_the_contract(check: Callable[[], None], problem: str):
    with pytest.raises(AssertionError, match=".*" + problem.replace("*", r"\*").replace("(", r"\(")):
        check()


# The contracts agree with each other and with the code


def test_the_documents_are_valid_schemas():
    for contract in (IDEOGRAM, SEGMIND):
        assert contract.document["openapi"] == "3.1.0"
        for schema in contract.document["components"]["schemas"].values():
            Draft202012Validator.check_schema(schema)


def test_the_code_agrees_with_the_contracts():
    ideogram_schemas = IDEOGRAM.document["components"]["schemas"]
    segmind_request = SEGMIND.document["components"]["schemas"]["ReframeRequest"]["properties"]
    for contract in (IDEOGRAM, SEGMIND):
        assert contract.document["components"]["schemas"]["Resolution"]["enum"] == sorted(
            RESOLUTION_NAMES, key=lambda name: tuple(map(int, name.split("x")))
        )
    assert ideogram_schemas["StyleCode"]["pattern"] == STYLE_CODE_PATTERN
    assert segmind_request["style_codes"]["items"]["pattern"] == STYLE_CODE_PATTERN
    references = ideogram_schemas["ReframeRequest"]["properties"]["style_reference_images"]
    assert references["x-max-total-bytes"] == MAX_REFERENCES_BYTES == IDEOGRAM_MAX_REFERENCES_BYTES
    speeds = set(get_args(RenderingSpeed))
    assert speeds == set(segmind_request["rendering_speed"]["enum"])
    assert speeds < set(ideogram_schemas["ReframeRequest"]["properties"]["rendering_speed"]["enum"])
    palette_names = ideogram_schemas["ColorPalette"]["oneOf"][0]["properties"]["name"]["enum"]
    assert palette_names == list(get_args(PaletteName))
