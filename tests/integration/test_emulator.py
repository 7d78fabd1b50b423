"""The reframe API emulator as a child process: validation, answers, faults, limits, stats.

Source images come from a loopback file server in a thread; nothing leaves 127.0.0.1.
"""

from __future__ import annotations

import base64
import io
import threading
import time
from collections.abc import Iterator
from email.utils import parsedate_to_datetime
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import requests
from PIL import Image

from reframe_local import servers
from reframe_local.emulator import EmulatorConfig, main, make_server
from reframe_local.emulator.state import STARTING_CREDITS, EmulatorState
from reframe_local.servers import ServerProcess
from reframe_pipeline.domain.imaging import ImageCheckError, sniff, verify

from ..conftest import EMULATOR_API_KEY, serving
from ..conftest import EMULATOR_DEFAULTS as DEFAULTS
from ..waiting import wait_until

IMAGES = Path(__file__).resolve().parents[2] / "examples" / "images"
SEGMIND = "/v1/ideogram-3-reframe"
SEGMIND_V2 = "/v2/ideogram-3-reframe"
IDEOGRAM = "/v1/ideogram-v3/reframe"


@pytest.fixture
def http() -> Iterator[requests.Session]:
    with requests.Session() as session:
        session.trust_env = False  # loopback only, whatever proxy the environment names
        yield session


@pytest.fixture
def emu(emulator: ServerProcess, http: requests.Session) -> Iterator[str]:
    """The shared emulator's URL, with default settings, no faults and zeroed stats."""
    http.post(f"{emulator.url}/_emulator/config", json=DEFAULTS, timeout=10).raise_for_status()
    http.post(f"{emulator.url}/_emulator/reset", timeout=10).raise_for_status()
    yield emulator.url
    http.post(f"{emulator.url}/_emulator/config", json=DEFAULTS, timeout=10).raise_for_status()
    http.post(f"{emulator.url}/_emulator/reset", timeout=10).raise_for_status()


def segmind(http: requests.Session, base: str, body: dict[str, Any], key: str = EMULATOR_API_KEY) -> requests.Response:
    return http.post(f"{base}{SEGMIND}", json=body, headers={"x-api-key": key}, timeout=30)


def ideogram(
    http: requests.Session,
    base: str,
    fields: dict[str, str],
    image: bytes | None = None,
    key: str = EMULATOR_API_KEY,
) -> requests.Response:
    upload = image if image is not None else (IMAGES / "astronaut.png").read_bytes()
    return http.post(
        f"{base}{IDEOGRAM}",
        data=fields,
        files={"image": ("source.png", upload, "application/octet-stream")},
        headers={"Api-Key": key},
        timeout=30,
    )


def segmind_v2(
    http: requests.Session, base: str, body: dict[str, Any], key: str = EMULATOR_API_KEY
) -> requests.Response:
    return http.post(f"{base}{SEGMIND_V2}", json=body, headers={"x-api-key": key}, timeout=30)


def v2_get(http: requests.Session, url: str, key: str = EMULATOR_API_KEY) -> requests.Response:
    return http.get(url, headers={"x-api-key": key}, timeout=30)


def until_ended(http: requests.Session, status_url: str) -> requests.Response:
    """Poll a v2 job's status until it is COMPLETED or FAILED (bounded)."""

    polled: list[requests.Response] = []  # a Response is falsy on a 4xx: not the predicate's value

    def ended() -> bool:
        polled.append(v2_get(http, status_url))
        return polled[-1].json()["status"] in ("COMPLETED", "FAILED")

    wait_until(ended, 20, "the job to end")
    return polled[-1]


def configure(http: requests.Session, base: str, **settings: Any) -> None:
    http.post(f"{base}/_emulator/config", json=settings, timeout=10).raise_for_status()


def set_faults(http: requests.Session, base: str, **faults: Any) -> None:
    http.post(f"{base}/_emulator/faults", json=faults, timeout=10).raise_for_status()


def stats(http: requests.Session, base: str) -> dict[str, Any]:
    result: dict[str, Any] = http.get(f"{base}/_emulator/stats", timeout=10).json()
    return result


def image_size(body: bytes) -> tuple[int, int]:
    with Image.open(io.BytesIO(body)) as image:
        return image.size


# Authentication and validation


@pytest.mark.parametrize(
    ("key", "segmind_error", "ideogram_error"),
    [
        ("", "missing x-api-key header", "missing Api-Key header"),
        # The key received is echoed, as real services sometimes do: the client's scrubbing is what hides it.
        ("wrong-key", "invalid key wrong-key", "invalid key wrong-key"),
    ],
)
def test_bad_key_is_401(
    http: requests.Session, emu: str, files: str, key: str, segmind_error: str, ideogram_error: str
) -> None:
    response = segmind(http, emu, {"image": f"{files}/coffee.png"}, key=key)
    assert response.status_code == 401
    assert response.json() == {"error": segmind_error}
    response = ideogram(http, emu, {"resolution": "1024x1024"}, key=key)
    assert response.status_code == 401
    assert response.json() == {"error": ideogram_error, "reject_reason": "unauthorized"}
    assert stats(http, emu)["billed"] == 0


def test_an_injected_401_echoes_the_key(http: requests.Session, emu: str, files: str) -> None:
    set_faults(http, emu, script=["401"])
    response = segmind(http, emu, {"image": f"{files}/coffee.png"})
    assert response.status_code == 401
    assert EMULATOR_API_KEY in response.json()["error"]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"image": None}, "image"),
        ({"image": "ftp://127.0.0.1/a.png"}, "image"),
        ({"image": 42}, "image"),
        ({"resolution": "1000x1000"}, "resolution"),
        ({"resolution": 1024}, "resolution"),
        ({"rendering_speed": "FAST"}, "rendering_speed"),
        ({"seed": 99}, "seed"),
        ({"seed": 1_000_000}, "seed"),
        ({"seed": "500"}, "seed"),
        ({"seed": True}, "seed"),
        ({"style_codes": "AAAA0000"}, "style_codes"),
        ({"style_codes": [7]}, "style_codes[0]"),
        ({"style_reference_images": ["brand.png"]}, "style_reference_images[0]"),
        ({"color_palette": {"name": "NEON"}}, "color_palette.name"),
        ({"color_palette": {"name": "EMBER", "members": [{"color_hex": "#112233"}]}}, "color_palette"),
        ({"color_palette": {"members": [{"color_hex": "red"}]}}, "color_palette.members[0].color_hex"),
        (
            {"color_palette": {"members": [{"color_hex": "#112233", "color_weight": 0.01}]}},
            "color_palette.members[0].color_weight",
        ),
        ({"prompt": "a cat"}, "prompt"),
    ],
)
def test_bad_parameter_is_400_naming_it(
    http: requests.Session, emu: str, files: str, change: dict[str, Any], field: str
) -> None:
    body: dict[str, Any] = {"image": f"{files}/coffee.png", "resolution": "1536x640"}
    body.update(change)
    body = {k: v for k, v in body.items() if v is not None}
    response = segmind(http, emu, body)
    assert response.status_code == 400
    assert response.json()["error"].startswith(f"{field}:")


@pytest.mark.parametrize(
    ("source", "field", "reason"),
    [
        ("/missing.png", "image", "HTTP 404"),
        ("/notes.txt", "image", "not a JPEG, PNG or WebP"),
        ("/red.gif", "image", "gif"),
    ],
)
def test_unusable_source_is_400(
    http: requests.Session, emu: str, files: str, source: str, field: str, reason: str
) -> None:
    response = segmind(http, emu, {"image": files + source})
    assert response.status_code == 400
    error = response.json()["error"]
    assert error.startswith(f"{field}:")
    assert reason in error


def test_unreachable_source_is_400(http: requests.Session, emu: str) -> None:
    response = segmind(http, emu, {"image": f"http://127.0.0.1:{servers.free_port()}/a.png"})
    assert response.status_code == 400
    assert "could not be fetched" in response.json()["error"]


def test_style_reference_must_be_an_image(http: requests.Session, emu: str, files: str) -> None:
    body = {"image": f"{files}/coffee.png", "style_reference_images": [f"{files}/notes.txt"]}
    response = segmind(http, emu, body)
    assert response.status_code == 400
    assert response.json()["error"].startswith("style_reference_images[0]:")


def test_body_must_be_json(http: requests.Session, emu: str) -> None:
    response = http.post(f"{emu}{SEGMIND}", data=b"image=x", headers={"x-api-key": EMULATOR_API_KEY})
    assert response.status_code == 400
    assert response.json()["error"].startswith("body:")


# Successful answers


@pytest.mark.parametrize("resolution", ["1536x640", "512x1536", "1024x1024", "1152x864"])
def test_answer_has_the_requested_resolution(http: requests.Session, emu: str, files: str, resolution: str) -> None:
    body = {
        "image": f"{files}/coffee.png",
        "resolution": resolution,
        "rendering_speed": "TURBO",
        "seed": 4242,
        "style_codes": ["AAAA0000"],
        "color_palette": {"members": [{"color_hex": "#112233", "color_weight": 0.5}]},
    }
    response = segmind(http, emu, body)
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"] == "image/jpeg"  # as Segmind answers
    assert verify(response.content) == ("jpeg", tuple(int(n) for n in resolution.split("x")))
    assert response.headers["x-request-id"]
    assert float(response.headers["x-credits-consumed"]) == pytest.approx(0.037)
    assert float(response.headers["x-remaining-credits"]) > 0
    call = stats(http, emu)["calls"][-1]
    assert call["endpoint"] == "segmind"
    assert call["resolution"] == resolution
    assert call["seed"] == 4242
    assert call["rendering_speed"] == "TURBO"
    assert call["status"] == 200
    assert call["source_size"] == [600, 400]
    assert call["duration_ms"] > 0


def test_defaults_and_style_references(http: requests.Session, emu: str, files: str) -> None:
    body = {"image": f"{files}/rocket.jpg", "style_reference_images": [f"{files}/chelsea.png"]}
    response = segmind(http, emu, body)
    assert response.status_code == 200, response.text
    assert image_size(response.content) == (1024, 1024)
    call = stats(http, emu)["calls"][-1]
    assert call["rendering_speed"] == "DEFAULT"
    assert 100 <= call["seed"] <= 999_999


def test_response_formats(http: requests.Session, emu: str, files: str) -> None:
    body = {"image": f"{files}/coffee.png", "resolution": "1344x768"}
    configure(http, emu, image_format="png")
    response = segmind(http, emu, body)
    assert response.headers["Content-Type"] == "image/png"
    assert verify(response.content) == ("png", (1344, 768))

    configure(http, emu, response_format="json-base64")
    response = segmind(http, emu, body)
    assert response.headers["Content-Type"] == "application/json"
    assert verify(base64.b64decode(response.json()["image"])) == ("png", (1344, 768))

    configure(http, emu, response_format="json-url", image_format="jpeg")
    url = segmind(http, emu, body).json()["image"]
    assert url.startswith(f"{emu}/_emulator/results/")
    result = http.get(url, timeout=10)
    assert result.headers["Content-Type"] == "image/jpeg"
    assert verify(result.content) == ("jpeg", (1344, 768))
    assert stats(http, emu)["billed"] == 3


# Faults


@pytest.mark.parametrize(
    ("kind", "status"),
    [
        ("400", 400),
        ("401", 401),
        ("403", 403),
        ("404", 404),
        ("406", 406),
        ("500", 500),
        ("502", 502),
        ("503", 503),
        ("504", 504),
        ("429-no-retry-after", 429),
    ],
)
def test_status_faults(http: requests.Session, emu: str, files: str, kind: str, status: int) -> None:
    set_faults(http, emu, script=[kind])
    response = segmind(http, emu, {"image": f"{files}/coffee.png"})
    assert response.status_code == status
    assert "error" in response.json()
    assert "Retry-After" not in response.headers
    assert stats(http, emu)["billed"] == 0


def test_429_retry_after_forms(http: requests.Session, emu: str, files: str) -> None:
    set_faults(http, emu, script=["429", "429-date"])
    seconds = segmind(http, emu, {"image": f"{files}/coffee.png"})
    assert seconds.status_code == 429
    assert seconds.headers["Retry-After"] == "1"
    dated = segmind(http, emu, {"image": f"{files}/coffee.png"})
    assert dated.status_code == 429
    assert parsedate_to_datetime(dated.headers["Retry-After"]).timestamp() > time.time() - 5


def test_html_500(http: requests.Session, emu: str, files: str) -> None:
    set_faults(http, emu, script=["html-500"])
    response = segmind(http, emu, {"image": f"{files}/coffee.png"})
    assert response.status_code == 500
    assert response.headers["Content-Type"].startswith("text/html")
    assert response.text.startswith("<html>")


@pytest.mark.parametrize("kind", ["garbage", "truncated"])
def test_broken_bodies(http: requests.Session, emu: str, files: str, kind: str) -> None:
    set_faults(http, emu, script=[kind])
    response = segmind(http, emu, {"image": f"{files}/coffee.png"})
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "image/jpeg"
    if kind == "garbage":
        assert sniff(response.content[:32]) is None
    with pytest.raises(ImageCheckError):
        verify(response.content)
    assert stats(http, emu)["billed"] == 0


def test_reset_drops_the_connection(http: requests.Session, emu: str, files: str) -> None:
    set_faults(http, emu, script=["reset"])
    with pytest.raises(requests.ConnectionError):
        segmind(http, emu, {"image": f"{files}/coffee.png"})
    assert segmind(http, emu, {"image": f"{files}/coffee.png"}).status_code == 200
    assert stats(http, emu)["by_status"] == {"0": 1, "200": 1}


def test_slow_answers_normally_after_the_delay(http: requests.Session, emu: str, files: str) -> None:
    set_faults(http, emu, script=["slow:300"])
    response = segmind(http, emu, {"image": f"{files}/coffee.png"})
    assert response.status_code == 200
    call = stats(http, emu)["calls"][-1]
    assert call["fault"] == "slow:300"
    assert call["duration_ms"] >= 300


def test_unsafe_on_segmind_is_422(http: requests.Session, emu: str, files: str) -> None:
    set_faults(http, emu, script=["unsafe"])
    assert segmind(http, emu, {"image": f"{files}/coffee.png"}).status_code == 422
    assert stats(http, emu)["billed"] == 0


def test_script_is_consumed_in_order(http: requests.Session, emu: str, files: str) -> None:
    # An invalid body answers 400 at once unless a fault answers first: fast, and it shows the order.
    set_faults(http, emu, script=["503", "ok", "429", "502"])
    bad = {"image": f"{files}/coffee.png", "resolution": "1x1"}
    statuses = [segmind(http, emu, bad).status_code for _ in range(5)]
    assert statuses == [503, 400, 429, 502, 400]
    assert http.get(f"{emu}/_emulator/faults", timeout=10).json() == {"script": [], "random": None}
    assert stats(http, emu)["faults_injected"] == 3


def test_random_faults_are_deterministic_by_seed(http: requests.Session, emu: str, files: str) -> None:
    bad = {"image": f"{files}/coffee.png", "resolution": "1x1"}
    runs = []
    for _ in range(2):
        http.post(f"{emu}/_emulator/reset", timeout=10).raise_for_status()
        set_faults(http, emu, random={"rate": 0.3, "seed": 7, "kinds": ["500", "504"]})
        runs.append([segmind(http, emu, bad).status_code for _ in range(40)])
    assert runs[0] == runs[1]
    failed = sum(status != 400 for status in runs[0])
    assert 4 <= failed <= 20
    assert set(runs[0]) <= {400, 500, 504}


def test_wrong_size_is_answered_and_billed(http: requests.Session, emu: str, files: str) -> None:
    set_faults(http, emu, script=["wrong-size"] * 3)
    v1 = segmind(http, emu, {"image": f"{files}/coffee.png", "resolution": "1536x640"})
    assert v1.status_code == 200
    assert verify(v1.content) == ("jpeg", (1472, 640))
    (item,) = ideogram(http, emu, {"resolution": "1536x640"}).json()["data"]
    assert item["resolution"] == "1472x640"  # what is served, as Ideogram's answer says
    assert image_size(http.get(item["url"], timeout=10).content) == (1472, 640)
    accepted = segmind_v2(http, emu, {"image": f"{files}/coffee.png", "resolution": "1536x640"}).json()
    until_ended(http, accepted["status_url"])
    output = v2_get(http, accepted["response_url"]).json()["output"]
    assert image_size(http.get(output, timeout=10).content) == (1472, 640)
    numbers = stats(http, emu)
    assert numbers["billed"] == 3
    assert [call["fault"] for call in numbers["calls"][:3]] == ["wrong-size"] * 3


@pytest.mark.parametrize(("kind", "reason"), [("402", "insufficient_funds"), ("402-daily-limit", "daily_limit")])
def test_402_account_conditions(http: requests.Session, emu: str, kind: str, reason: str) -> None:
    set_faults(http, emu, script=[kind])
    response = ideogram(http, emu, {"resolution": "1024x1024"})
    assert response.status_code == 402
    answer = response.json()
    assert answer["reject_reason"] == reason
    assert answer["error"]
    assert "Retry-After" not in response.headers
    assert stats(http, emu)["billed"] == 0


@pytest.mark.parametrize("kind", ["429", "429-date", "429-no-retry-after"])
def test_ideogram_429_is_inflight_limit_without_retry_after(http: requests.Session, emu: str, kind: str) -> None:
    set_faults(http, emu, script=[kind])
    response = ideogram(http, emu, {"resolution": "1024x1024"})
    assert response.status_code == 429
    assert response.json()["reject_reason"] == "inflight_limit"
    assert "Retry-After" not in response.headers


def test_ideogram_in_flight_limit_is_its_429(http: requests.Session, emu: str) -> None:
    configure(http, emu, max_in_flight=1)
    set_faults(http, emu, script=["slow:3000"])

    def slow_call() -> None:
        with requests.Session() as session:
            session.trust_env = False
            ideogram(session, emu, {"resolution": "1024x1024"})

    first = threading.Thread(target=slow_call)
    first.start()
    wait_until(lambda: stats(http, emu)["in_flight"] >= 1, 10, "the first call to start")
    response = ideogram(http, emu, {"resolution": "1024x1024"})
    first.join(30)
    assert response.status_code == 429
    assert response.json()["reject_reason"] == "inflight_limit"
    assert "Retry-After" not in response.headers


@pytest.mark.parametrize(
    ("kind", "endpoint"), [("406", "ideogram"), ("402", "segmind"), ("402-daily-limit", "segmind")]
)
def test_a_status_the_api_never_sends_is_used_up_without_effect(
    http: requests.Session, emu: str, files: str, kind: str, endpoint: str
) -> None:
    set_faults(http, emu, script=[kind])
    if endpoint == "ideogram":
        response = ideogram(http, emu, {"resolution": "1024x1024"})
    else:
        response = segmind(http, emu, {"image": f"{files}/coffee.png"})
    assert response.status_code == 200
    assert stats(http, emu)["calls"][-1]["fault"] == kind
    assert http.get(f"{emu}/_emulator/faults", timeout=10).json()["script"] == []


def test_ideogram_errors_carry_a_reject_reason(http: requests.Session, emu: str) -> None:
    response = ideogram(http, emu, {"resolution": "1x1"})
    assert response.status_code == 400
    assert response.json()["reject_reason"] == "bad_request"
    set_faults(http, emu, script=["500"])
    assert ideogram(http, emu, {"resolution": "1024x1024"}).json()["reject_reason"] == "internal_server_error"


@pytest.mark.parametrize("code", ["Modern", "AAAA", "5A3F09C1F", "5A3F09G1"])
def test_style_codes_must_be_8_hex_characters(http: requests.Session, emu: str, files: str, code: str) -> None:
    response = ideogram(http, emu, {"resolution": "1024x1024", "style_codes": code})
    assert response.status_code == 400
    assert response.json()["error"].startswith("style_codes[0]:")
    response = segmind(http, emu, {"image": f"{files}/coffee.png", "style_codes": [code]})
    assert response.status_code == 400
    assert response.json()["error"].startswith("style_codes[0]:")
    assert ideogram(http, emu, {"resolution": "1024x1024", "style_codes": "5a3F09c1"}).status_code == 200
    assert stats(http, emu)["billed"] == 1


def test_ideogram_caps_style_references_in_total(http: requests.Session, emu: str) -> None:
    png = (IMAGES / "chelsea.png").read_bytes()
    # Three references that each pass any per-file limit, 10 MB together: padded PNGs (trailing bytes).
    under = png + bytes(3_333_333 - len(png))
    over = png + bytes(3_333_335 - len(png))
    source = ("source.png", (IMAGES / "astronaut.png").read_bytes(), "image/png")

    def post(references: list[bytes]) -> requests.Response:
        parts = [("image", source)] + [("style_reference_images", ("s.png", r, "image/png")) for r in references]
        return http.post(
            f"{emu}{IDEOGRAM}", data={"resolution": "1024x1024"}, files=parts, headers={"Api-Key": EMULATOR_API_KEY}
        )

    assert post([under, under, under]).status_code == 200
    refused = post([under, under, over])
    assert refused.status_code == 400
    assert refused.json()["error"] == ("style_reference_images: 10000001 bytes in total, over the limit of 10000000")
    assert stats(http, emu)["billed"] == 1


def test_ideogram_rendering_speeds(http: requests.Session, emu: str) -> None:
    for speed in ("FLASH", "TURBO", "BALANCED", "DEFAULT", "QUALITY"):
        assert ideogram(http, emu, {"resolution": "1024x1024", "rendering_speed": speed}).status_code == 200


def test_result_url_answers_503_once(http: requests.Session, emu: str, files: str) -> None:
    set_faults(http, emu, script=["result-503"])
    (item,) = ideogram(http, emu, {"resolution": "1024x1024"}).json()["data"]
    assert stats(http, emu)["billed"] == 1
    first = http.get(item["url"], timeout=10)
    assert first.status_code == 503
    assert "error" in first.json()
    assert verify(http.get(item["url"], timeout=10).content) == ("jpeg", (1024, 1024))

    set_faults(http, emu, script=["result-503"])
    accepted = segmind_v2(http, emu, {"image": f"{files}/coffee.png"}).json()
    until_ended(http, accepted["status_url"])
    output = v2_get(http, accepted["response_url"]).json()["output"]
    assert http.get(output, timeout=10).status_code == 503
    assert verify(http.get(output, timeout=10).content) == ("jpeg", (1024, 1024))
    numbers = stats(http, emu)
    assert numbers["billed"] == 2
    assert numbers["results_served"] == 2


def test_v2_fail_ends_the_job_failed_and_billed(http: requests.Session, emu: str, files: str) -> None:
    set_faults(http, emu, script=["v2-fail"])
    accepted = segmind_v2(http, emu, {"image": f"{files}/coffee.png"})
    assert accepted.status_code == 200
    request_id = accepted.json()["request_id"]
    polled = until_ended(http, accepted.json()["status_url"])
    assert polled.status_code == 422
    assert polled.json()["status"] == "FAILED"
    response = v2_get(http, accepted.json()["response_url"])
    assert response.status_code == 422
    answer = response.json()
    assert answer["request_id"] == request_id
    assert answer["status"] == "FAILED"
    assert answer["error"]
    assert "output" not in answer
    assert stats(http, emu)["billed"] == 1


def test_v2_polls_take_faults_reset_drops_them(http: requests.Session, emu: str, files: str) -> None:
    set_faults(http, emu, script=["ok", "reset"])
    accepted = segmind_v2(http, emu, {"image": f"{files}/coffee.png"}).json()
    with pytest.raises(requests.ConnectionError):
        v2_get(http, accepted["status_url"])
    until_ended(http, accepted["status_url"])
    set_faults(http, emu, script=["reset"])
    with pytest.raises(requests.ConnectionError):
        v2_get(http, accepted["response_url"])
    assert v2_get(http, accepted["response_url"]).json()["status"] == "COMPLETED"
    numbers = stats(http, emu)
    assert numbers["by_status"]["0"] == 2
    assert numbers["billed"] == 1


def test_slow_can_outlast_the_client(http: requests.Session, emu: str, files: str) -> None:
    set_faults(http, emu, script=["slow:10000"])
    with pytest.raises(requests.ReadTimeout):
        http.post(
            f"{emu}{SEGMIND}",
            json={"image": f"{files}/coffee.png"},
            headers={"x-api-key": EMULATOR_API_KEY},
            timeout=(5, 0.5),
        )
    # Still running on the server, which answers others meanwhile.
    assert stats(http, emu)["in_flight"] == 1
    assert segmind(http, emu, {"image": f"{files}/coffee.png"}).status_code == 200
    http.post(f"{emu}/_emulator/reset", timeout=10).raise_for_status()
    assert stats(http, emu)["in_flight"] == 0


def test_calls_running_across_a_reset_leave_the_new_stats_alone() -> None:
    state = EmulatorState(EmulatorConfig(api_key="k", max_in_flight=1))
    stale = state.begin("segmind")
    assert state.admit(stale)
    state.reset()
    fresh = state.begin("segmind")
    assert state.admit(fresh)  # the reset gave the stale call's slot back
    state.saw_source(stale, 10_000, 100)
    state.spend(stale, 0.075)
    state.release(stale)
    state.record(stale, 1)
    numbers = state.stats()
    assert numbers["in_flight"] == 1
    assert numbers["requests"] == numbers["billed"] == numbers["largest_source_bytes"] == 0
    assert numbers["remaining_credits"] == STARTING_CREDITS
    state.spend(fresh, 0.075)
    state.release(fresh)
    state.record(fresh, 1)
    numbers = state.stats()
    assert (numbers["in_flight"], numbers["requests"], numbers["billed"]) == (0, 1, 1)
    assert numbers["remaining_credits"] == pytest.approx(STARTING_CREDITS - 0.075)


def test_unknown_fault_kind_is_refused(http: requests.Session, emu: str) -> None:
    response = http.post(f"{emu}/_emulator/faults", json={"script": ["ok", "teapot"]}, timeout=10)
    assert response.status_code == 400
    assert "script[1]" in response.json()["error"]


# Concurrency


def test_max_in_flight_answers_429(http: requests.Session, emu: str, files: str) -> None:
    configure(http, emu, max_in_flight=2, latency_ms=1500)
    start = threading.Barrier(5)
    statuses: list[int] = []

    def one_call() -> None:
        with requests.Session() as session:
            session.trust_env = False
            start.wait()
            statuses.append(segmind(session, emu, {"image": f"{files}/coffee.png"}).status_code)

    threads = [threading.Thread(target=one_call) for _ in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(statuses) == [200, 200, 429, 429, 429]
    numbers = stats(http, emu)
    assert numbers["rejected_429"] == 3
    assert numbers["max_in_flight_seen"] == 2
    assert numbers["billed"] == 2
    assert numbers["in_flight"] == 0


# Ideogram's own API


def test_ideogram_multipart_and_result_urls(http: requests.Session, emu: str) -> None:
    fields = {
        "resolution": "1344x768",
        "num_images": "2",
        "seed": "2000000000",
        "rendering_speed": "QUALITY",
        "color_palette": '{"name": "PASTEL"}',
    }
    response = ideogram(http, emu, fields)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["created"]
    assert [item["seed"] for item in answer["data"]] == [2_000_000_000, 2_000_000_001]
    for item in answer["data"]:
        assert item["is_image_safe"] is True
        assert item["resolution"] == "1344x768"
        assert isinstance(item["prompt"], str)
        result = http.get(item["url"], timeout=10)
        assert result.headers["Content-Type"] == "image/jpeg"
        assert verify(result.content) == ("jpeg", (1344, 768))
    numbers = stats(http, emu)
    assert numbers["billed"] == 2
    assert numbers["results_served"] == 2
    assert numbers["calls"][-1]["endpoint"] == "ideogram"
    assert numbers["calls"][-1]["source_size"] == [512, 512]


def test_ideogram_result_expires(http: requests.Session, emu: str) -> None:
    configure(http, emu, result_ttl_s=0.2)
    url = ideogram(http, emu, {"resolution": "1024x1024"}).json()["data"][0]["url"]
    wait_until(lambda: http.get(url, timeout=10).status_code != 200, 10, "the result to expire")
    assert http.get(url, timeout=10).status_code == 404


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({}, "resolution"),
        ({"resolution": "1x1"}, "resolution"),
        ({"resolution": "1024x1024", "seed": "-1"}, "seed"),
        ({"resolution": "1024x1024", "seed": "2147483648"}, "seed"),
        ({"resolution": "1024x1024", "num_images": "9"}, "num_images"),
        ({"resolution": "1024x1024", "rendering_speed": "FAST"}, "rendering_speed"),
        ({"resolution": "1024x1024", "color_palette": "{nope"}, "color_palette"),
        ({"resolution": "1024x1024", "magic_prompt": "ON"}, "magic_prompt"),
    ],
)
def test_ideogram_bad_fields(http: requests.Session, emu: str, fields: dict[str, str], field: str) -> None:
    response = ideogram(http, emu, fields)
    assert response.status_code == 400
    assert response.json()["error"].startswith(f"{field}:")


def test_ideogram_takes_only_jpeg_png_webp(http: requests.Session, emu: str) -> None:
    gif = io.BytesIO()
    Image.new("RGB", (32, 32), "blue").save(gif, "GIF")
    response = ideogram(http, emu, {"resolution": "1024x1024"}, image=gif.getvalue())
    assert response.status_code == 400
    assert response.json()["error"].startswith("image:")


def test_ideogram_style_references(http: requests.Session, emu: str) -> None:
    reference = ("style.jpg", (IMAGES / "rocket.jpg").read_bytes(), "image/jpeg")
    source = ("source.png", (IMAGES / "chelsea.png").read_bytes(), "image/png")
    multipart = {"image": source, "style_reference_images": reference}
    headers = {"Api-Key": EMULATOR_API_KEY}
    url = f"{emu}{IDEOGRAM}"
    response = http.post(url, data={"resolution": "1024x1024"}, files=multipart, headers=headers)
    assert response.status_code == 200, response.text
    both = {"resolution": "1024x1024", "style_codes": "AAAA0000"}
    response = http.post(url, data=both, files=multipart, headers=headers)
    assert response.status_code == 400
    assert response.json()["error"].startswith("style_codes:")
    multipart["style_reference_images"] = ("style.txt", b"not an image", "text/plain")
    response = http.post(url, data={"resolution": "1024x1024"}, files=multipart, headers=headers)
    assert response.status_code == 400
    assert response.json()["error"].startswith("style_reference_images[0]:")


def test_ideogram_unsafe(http: requests.Session, emu: str) -> None:
    set_faults(http, emu, script=["unsafe"])
    response = ideogram(http, emu, {"resolution": "1024x1024"})
    assert response.status_code == 200
    (item,) = response.json()["data"]
    assert item["is_image_safe"] is False
    assert "url" not in item
    assert stats(http, emu)["billed"] == 0


# Segmind's asynchronous v2 API


def test_v2_queues_runs_and_answers_the_output(http: requests.Session, emu: str, files: str) -> None:
    configure(http, emu, latency_ms=300)
    sent = time.monotonic()
    response = segmind_v2(http, emu, {"image": f"{files}/coffee.png", "resolution": "1536x640", "seed": 4242})
    assert response.status_code == 200, response.text
    accepted = response.json()
    request_id = accepted["request_id"]
    status_url = f"{emu}/v2/requests/{request_id}/status"
    assert accepted == {
        "request_id": request_id,
        "status": "QUEUED",
        "poll_url": status_url,
        "status_url": status_url,
        "response_url": f"{emu}/v2/requests/{request_id}",
    }
    assert response.headers["x-request-id"] == request_id
    assert float(response.headers["x-credits-consumed"]) == pytest.approx(0.075)
    # Billed when accepted, before the job has run.
    assert stats(http, emu)["billed"] == 1

    running = v2_get(http, accepted["response_url"])
    assert running.status_code == 200
    assert running.json() in ({"request_id": request_id, "status": s} for s in ("QUEUED", "PROCESSING"))
    assert until_ended(http, status_url).json() == {"request_id": request_id, "status": "COMPLETED"}
    assert time.monotonic() - sent >= 0.3  # the latency counts from the request, the source's fetch included

    done = v2_get(http, accepted["response_url"]).json()
    assert done["request_id"] == request_id
    assert done["status"] == "COMPLETED"
    assert done["metrics"]["processing_ms"] > 0
    assert done["metrics"]["queue_ms"] >= 0
    assert verify(http.get(done["output"], timeout=10).content) == ("jpeg", (1536, 640))
    numbers = stats(http, emu)
    assert numbers["billed"] == 1
    assert numbers["by_endpoint"]["segmind-v2"] == 1
    assert numbers["by_endpoint"]["segmind-v2-response"] == 2
    assert numbers["by_endpoint"]["segmind-v2-status"] >= 1
    assert numbers["requests"] == sum(numbers["by_endpoint"].values())
    assert {call["request_id"] for call in numbers["calls"]} == {request_id}
    assert numbers["calls"][0]["seed"] == 4242


def test_v2_needs_the_key(http: requests.Session, emu: str, files: str) -> None:
    assert segmind_v2(http, emu, {"image": f"{files}/coffee.png"}, key="wrong").status_code == 401
    accepted = segmind_v2(http, emu, {"image": f"{files}/coffee.png"}).json()
    assert v2_get(http, accepted["status_url"], key="wrong").status_code == 401
    assert v2_get(http, accepted["response_url"], key="").status_code == 401
    assert stats(http, emu)["billed"] == 1


@pytest.mark.parametrize(
    ("body", "field"),
    [({"image": "/coffee.png", "resolution": "1x1"}, "resolution"), ({"image": "/notes.txt"}, "image")],
)
def test_v2_refuses_a_bad_request_at_once_unbilled(
    http: requests.Session, emu: str, files: str, body: dict[str, str], field: str
) -> None:
    response = segmind_v2(http, emu, {**body, "image": files + body["image"]})
    assert response.status_code == 400
    assert response.json()["error"].startswith(f"{field}:")
    assert stats(http, emu)["billed"] == 0


def test_v2_unknown_expired_and_reset_requests_are_404(http: requests.Session, emu: str, files: str) -> None:
    assert v2_get(http, f"{emu}/v2/requests/no-such-id").status_code == 404
    configure(http, emu, result_ttl_s=0.3)
    accepted = segmind_v2(http, emu, {"image": f"{files}/coffee.png"}).json()
    until_ended(http, accepted["status_url"])
    wait_until(lambda: v2_get(http, accepted["response_url"]).status_code != 200, 10, "the job to be forgotten")
    gone = v2_get(http, accepted["status_url"])
    assert gone.status_code == 404
    assert "error" in gone.json()

    configure(http, emu, result_ttl_s=60, latency_ms=5000)
    running = segmind_v2(http, emu, {"image": f"{files}/coffee.png"}).json()
    http.post(f"{emu}/_emulator/reset", timeout=10).raise_for_status()
    assert v2_get(http, running["status_url"]).status_code == 404


def test_serve_v2_off_answers_404_and_leaves_the_faults_to_v1(http: requests.Session, emu: str, files: str) -> None:
    configure(http, emu, serve_v2=False)
    set_faults(http, emu, script=["500"])
    refused = segmind_v2(http, emu, {"image": f"{files}/coffee.png"})
    assert refused.status_code == 404
    assert refused.json() == {"error": "model not found"}
    assert segmind(http, emu, {"image": f"{files}/coffee.png"}).status_code == 500
    assert segmind(http, emu, {"image": f"{files}/coffee.png"}).status_code == 200
    numbers = stats(http, emu)
    assert numbers["by_endpoint"] == {"segmind-v2": 1, "segmind": 2}
    assert numbers["billed"] == 1
    assert http.get(f"{emu}/_emulator/config", timeout=10).json()["serve_v2"] is False


# Strict options


def test_runtime_limits_and_largest_source(http: requests.Session, emu: str, files: str) -> None:
    configure(http, emu, max_source_bytes=500_000)
    too_big = segmind(http, emu, {"image": f"{files}/astronaut.png"})
    assert too_big.status_code == 400
    assert "over the limit of 500000" in too_big.json()["error"]
    configure(http, emu, max_source_bytes=None, max_source_pixels=200_000)
    assert segmind(http, emu, {"image": f"{files}/coffee.png"}).status_code == 400
    assert segmind(http, emu, {"image": f"{files}/chelsea.png"}).status_code == 200
    numbers = stats(http, emu)
    assert numbers["largest_source_bytes"] == (IMAGES / "astronaut.png").stat().st_size
    assert numbers["largest_source_pixels"] == 512 * 512
    assert numbers["billed"] == 1


@pytest.fixture(scope="module")
def strict_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """An emulator started with the strict command-line options."""
    log = tmp_path_factory.mktemp("strict") / "emulator.log"
    args = ("--square-only", "--max-source-pixels", "300000", "--max-source-bytes", "800000", "--image-format", "png")
    server = servers.start_emulator(EMULATOR_API_KEY, *args, log_path=log)
    yield server
    server.stop()


def test_strict_command_line_options(http: requests.Session, strict_emulator: ServerProcess, files: str) -> None:
    base = strict_emulator.url
    square = segmind(http, base, {"image": f"{files}/astronaut.png"})
    assert square.status_code == 200
    assert square.headers["Content-Type"] == "image/png"
    wide = segmind(http, base, {"image": f"{files}/coffee.png"})
    assert wide.status_code == 400
    assert "600x400 is not square" in wide.json()["error"]
    fields = {"resolution": "1024x1024"}
    assert ideogram(http, base, fields, image=(IMAGES / "coffee.png").read_bytes()).status_code == 400
    assert ideogram(http, base, fields).status_code == 200
    config = http.get(f"{base}/_emulator/config", timeout=10).json()
    assert config["square_only"] is True
    assert config["max_source_pixels"] == 300_000
    assert config["image_format"] == "png"
    assert "api_key" not in config


def test_sigterm_exits_cleanly(http: requests.Session, tmp_path: Path) -> None:
    server = servers.start_emulator(EMULATOR_API_KEY, log_path=tmp_path / "emulator.log")
    try:
        assert http.get(f"{server.url}/_emulator/health", timeout=10).json() == {"status": "ok"}
    finally:
        server.stop()
    assert server.popen.returncode == 0
    assert f"emulator listening on {server.url}" in server.log_path.read_text()


# Stats, reset, admin validation


def test_stats_and_reset(http: requests.Session, emu: str, files: str) -> None:
    segmind(http, emu, {"image": f"{files}/coffee.png", "resolution": "1536x640"})
    segmind(http, emu, {"image": f"{files}/coffee.png", "resolution": "9x9"})
    set_faults(http, emu, script=["500", "500"])
    segmind(http, emu, {"image": f"{files}/coffee.png"})
    numbers = stats(http, emu)
    assert numbers["requests"] == 3
    assert numbers["billed"] == 1
    assert numbers["by_status"] == {"200": 1, "400": 1, "500": 1}
    assert [call["status"] for call in numbers["calls"]] == [200, 400, 500]
    assert numbers["calls"][2]["fault"] == "500"
    assert http.post(f"{emu}/_emulator/reset", timeout=10).status_code == 200
    numbers = stats(http, emu)
    assert numbers["requests"] == numbers["billed"] == numbers["largest_source_bytes"] == 0
    assert numbers["calls"] == []
    assert numbers["by_status"] == {}
    assert http.get(f"{emu}/_emulator/faults", timeout=10).json()["script"] == []


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"response_format": "gif"}, "response_format"),
        ({"image_format": "webp"}, "image_format"),
        ({"latency_ms": -1}, "latency_ms"),
        ({"max_in_flight": "2"}, "max_in_flight"),
        ({"api_key": "x"}, "api_key"),
    ],
)
def test_config_is_validated(http: requests.Session, emu: str, body: dict[str, Any], field: str) -> None:
    response = http.post(f"{emu}/_emulator/config", json=body, timeout=10)
    assert response.status_code == 400
    assert response.json()["error"].startswith(f"{field}:")


def test_loopback_only() -> None:
    config = EmulatorConfig(api_key="k")
    for host in ("0.0.0.0", "192.168.1.10", "example.com", "::"):
        with pytest.raises(ValueError, match="loopback"):
            make_server(host, 0, config)
    assert main(["--host", "0.0.0.0", "--port", "0", "--api-key", "k"]) == 2


SLOW_SOURCE_S = 0.4


@pytest.fixture
def slow_source() -> Iterator[str]:
    """The URL of a sample image that its server takes SLOW_SOURCE_S to start sending."""
    body = (IMAGES / "coffee.png").read_bytes()

    class Slow(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            time.sleep(SLOW_SOURCE_S)
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    with serving(Slow) as url:
        yield f"{url}/coffee.png"


def test_latency_is_a_calls_whole_time_the_sources_fetch_included(
    http: requests.Session, emu: str, slow_source: str
) -> None:
    """As a client sees a provider's generation time: a slow source is part of it, not added after it."""
    configure(http, emu, latency_ms=900)
    started = time.monotonic()
    response = segmind(http, emu, {"image": slow_source, "resolution": "1536x640"})
    elapsed = time.monotonic() - started
    assert response.status_code == 200, response.text
    assert 0.9 <= elapsed < 0.9 + SLOW_SOURCE_S  # the 0.4 s fetch inside the 0.9 s, not on top of it


def test_an_answer_is_encoded_within_the_latency_not_after_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """A provider's answer is ready when it says so: encoding it (up to a second for a large PNG) is part of the
    generation time, or every result would be late by it and its CPU would land when the client's does."""
    from reframe_local.emulator import api
    from reframe_local.emulator.state import Call

    steps: list[str] = []
    encode = api.image_file
    monkeypatch.setattr(api, "image_file", lambda *args: (steps.append("encode"), encode(*args))[1])
    waits = SimpleNamespace(monotonic=time.monotonic, sleep=lambda seconds: steps.append("wait"))
    monkeypatch.setattr(api, "time", waits)  # api's own clock: other threads' sleeps stay as they are
    state = EmulatorState(EmulatorConfig(api_key="k", latency_ms=500, render="fast"))
    call = Call("segmind", resolution="1536x640")
    image, answer = api.generate(state, Image.new("RGB", (600, 400), "orange"), call)
    assert steps == ["encode", "wait"]
    assert image.size == (1536, 640) and sniff(answer.body[:32]) == "jpeg"
