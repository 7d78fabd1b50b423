"""``reframe check-provider``: one real, paid, cheapest call with the configured endpoint and key, and
what came back, so a first contact with a real key says at once whether everything is wired.

The call goes through the pipeline's own provider client (same request, same answer checks), once, without
retries: TURBO, the smallest of the 69 resolutions, a small generated image. Ideogram takes the image as an
uploaded file. Segmind takes it only as a URL it fetches itself (whether it takes a data: URL is not
confirmed), so a Segmind check needs ``--image-url``: a public https URL of a JPEG, PNG or WebP. No
default: a third-party URL could vanish and fail the check for a reason that is not the user's wiring.
``--dry-run`` prints the request instead of sending it (the key masked).
"""

from __future__ import annotations

import io
import json
from email.message import Message
from email.parser import BytesParser
from email.policy import HTTP
from typing import Any, TextIO

import requests
from PIL import Image
from requests.adapters import BaseAdapter

from reframe_pipeline.adapters.providers.ideogram import IdeogramProvider
from reframe_pipeline.adapters.providers.limiter import AimdLimiter
from reframe_pipeline.adapters.providers.remote import RemoteProvider
from reframe_pipeline.adapters.providers.retrying import RetryPolicy
from reframe_pipeline.adapters.providers.segmind import SegmindProvider, v2_url
from reframe_pipeline.application.deadline import Deadline
from reframe_pipeline.application.source_image import SourceImage
from reframe_pipeline.application.values import GenerationParams, ReframeRequest
from reframe_pipeline.composition.providers import key_source
from reframe_pipeline.domain.errors import ReframeError
from reframe_pipeline.domain.imaging import verify
from reframe_pipeline.domain.pricing import estimate
from reframe_pipeline.domain.resolutions import RESOLUTIONS
from reframe_pipeline.settings import Settings, SettingsError

SPEED = "TURBO"
# Price does not depend on the resolution, but the smallest is the quickest to make and to fetch.
RESOLUTION = min(RESOLUTIONS, key=lambda size: size.width * size.height)
# The v2 job of a check is collected while this lasts; beyond it the result stays at the provider.
CHECK_BUDGET_MS = 180_000
_SHOWN_HEADERS = ("x-request-id", "x-credits-consumed", "x-remaining-credits", "x-rate-limit-remaining")


class _DryRun(Exception):
    """Raised in place of sending: carries the request the client built."""

    def __init__(self, request: requests.PreparedRequest) -> None:
        super().__init__("dry run")
        self.request = request


class _NotSent(BaseAdapter):
    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> requests.Response:
        raise _DryRun(request)

    def close(self) -> None:
        """Nothing to close."""


def sample_png() -> bytes:
    """A small square PNG (512x512, a few kilobytes): a gradient, so that there is something to extend."""
    out = io.BytesIO()
    Image.radial_gradient("L").resize((512, 512)).convert("RGB").save(out, "PNG")
    return out.getvalue()


def mask(key: str) -> str:
    """Enough to tell keys apart, never enough to use one."""
    return "*" * 8 + (key[-4:] if len(key) >= 16 else "")


# Long for a reason: one call's checklist, each line printed as its step is done, so a failure shows where.
def run(out: TextIO, err: TextIO, *, provider: str | None, image_url: str | None, dry_run: bool) -> int:
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        err.write(f"{exc}\n")
        return 2
    name = provider or settings.reframe_provider
    if name == "local":
        err.write("the local engine makes no call: nothing to check (set REFRAME_PROVIDER or --provider)\n")
        return 2
    url = settings.segmind_api_url if name == "segmind" else settings.ideogram_api_url
    read_key = key_source(getattr(settings, f"{name}_api_key"), getattr(settings, f"{name}_api_key_secret"), name)
    try:  # the key first: with no key, an --image-url would not help
        key = read_key()
    except ReframeError as exc:
        err.write(f"{exc.message}\n")
        return 2
    if name == "segmind" and not image_url:
        err.write("Segmind fetches the source itself: give --image-url, a public https URL of a JPEG, PNG or WebP\n")
        return 2
    if name == "ideogram" and image_url:
        err.write("--image-url is for Segmind: Ideogram's check uploads a generated image\n")
        return 2
    with requests.Session() as session:
        client = _client(name, settings, url, key, session)
        request = ReframeRequest(
            SourceImage(image_url or "generated.png", sample_png),
            RESOLUTION,
            GenerationParams(rendering_speed=SPEED),
            Deadline(budget_ms=CHECK_BUDGET_MS),
        )
        out.write(
            f"{name}: {endpoint(name, settings)}, key {mask(key)}; {SPEED}, {RESOLUTION},"
            f" image {image_url or 'generated 512x512 PNG'}\n"
        )
        if dry_run:
            session.mount("https://", _NotSent())
            session.mount("http://", _NotSent())
            try:
                client.reframe(request)
            except _DryRun as built:
                _print_request(out, built.request, key)
            return 0
        exchanges: list[requests.Response] = []
        session.hooks["response"].append(lambda response, *_, **__: exchanges.append(response))
        try:
            result = client.reframe(request)
        except ReframeError as exc:
            _print_exchanges(out, exchanges, key)
            out.write(f"FAILED ({exc.code}): {exc.message}\n")
            return 1
    _print_exchanges(out, exchanges, key)
    fmt, (width, height) = verify(result.body)
    consumed = [r.headers["x-credits-consumed"] for r in exchanges if "x-credits-consumed" in r.headers]
    out.write(f"result: {result.content_type} ({fmt}) {width}x{height}, {len(result.body)} bytes\n")
    out.write(
        f"cost: estimated ${estimate(settings.price_table, name, SPEED):.3f} ({name} {SPEED}, PRICE_TABLE)"
        + (f"; the provider says x-credits-consumed {consumed[-1]}" if consumed else "")
        + "\n"
    )
    out.write("OK: the endpoint and the key work, and the answer is what the pipeline expects\n")
    return 0


def endpoint(name: str, settings: Settings) -> str:
    """Where the check's request goes: Segmind's async v2 API unless SEGMIND_API_MODE=sync (auto falls back to
    v1 when v2 does not serve the model)."""
    if name != "segmind":
        return settings.ideogram_api_url
    v1, mode = settings.segmind_api_url, settings.segmind_api_mode
    if mode == "sync":
        return f"{v1} (SEGMIND_API_MODE=sync)"
    fallback = f", then {v1} if v2 does not serve the model" if mode == "auto" else ""
    return f"{v2_url(v1)} (SEGMIND_API_MODE={mode}{fallback})"


def _client(name: str, settings: Settings, url: str, key: str, session: requests.Session) -> RemoteProvider:
    """The pipeline's client for ``name``, sending once (a check must not pay twice)."""
    transport: dict[str, Any] = {
        "url": url,
        "api_key": lambda: key,
        "session": session,
        "policy": RetryPolicy(
            max_attempts=1, connect_timeout_s=settings.connect_timeout_s, read_timeout_s=settings.read_timeout_s
        ),
        "min_remaining_ms": 0,
        "reserve_ms": 0,
        "limiter": AimdLimiter(1),
    }
    if name == "segmind":
        return SegmindProvider(mode=settings.segmind_api_mode, **transport)
    return IdeogramProvider(storage_endpoint="", **transport)  # no style references: nothing of ours to fetch


def _print_request(out: TextIO, request: requests.PreparedRequest, key: str) -> None:
    out.write(f"would send: {request.method} {request.url}\n")
    for header, value in request.headers.items():
        out.write(f"  {header}: {mask(value) if value == key else value}\n")
    body = request.body if isinstance(request.body, bytes) else (request.body or "").encode()
    content_type = request.headers.get("Content-Type", "")
    if content_type.startswith("application/json"):
        out.write(json.dumps(json.loads(body), indent=2) + "\n")
        return
    form = BytesParser(policy=HTTP).parsebytes(f"Content-Type: {content_type}\r\n\r\n".encode() + body)
    for part in form.iter_parts():
        assert isinstance(part, Message)
        name, payload = part.get_param("name", header="content-disposition"), part.get_payload(decode=True)
        assert isinstance(payload, bytes)
        if part.get_filename() is None:
            out.write(f"  part {name} ({part.get_content_type()}): {payload.decode()}\n")
        else:
            out.write(f"  part {name}: file {part.get_filename()}, {part.get_content_type()}, {len(payload)} bytes\n")


def _print_exchanges(out: TextIO, exchanges: list[requests.Response], key: str) -> None:
    for response in exchanges:
        request = response.request
        shown = " ".join(f"{h}={response.headers[h]}" for h in _SHOWN_HEADERS if h in response.headers)
        line = (
            f"{request.method} {request.url} -> HTTP {response.status_code}, "
            f"{response.headers.get('Content-Type', 'no content type')}, {len(response.content)} bytes, "
            f"{response.elapsed.total_seconds() * 1000:.0f} ms{'; ' + shown if shown else ''}\n"
        )
        out.write(line.replace(key, "***"))
