"""What the emulated APIs accept and do: request validation, fetching and checking sources, rendering."""

from __future__ import annotations

import hashlib
import io
import json
import os
import time
from dataclasses import dataclass
from email.message import Message
from email.parser import BytesParser
from email.policy import HTTP
from typing import Annotated, Literal
from urllib.parse import urlsplit

import requests
from PIL import Image, ImageFilter
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, Json, ValidationError

from reframe_pipeline.domain.imaging import PROVIDER_FORMATS, ImageCheckError, sniff, verify
from reframe_pipeline.domain.local_engine import extend_canvas, fitted_box
from reframe_pipeline.domain.pricing import DEFAULT_PRICES
from reframe_pipeline.domain.resolutions import RESOLUTION_NAMES, Size, parse_size
from reframe_pipeline.domain.sidecar import ColorPalette, RenderingSpeed, Seed, StyleCode, describe

from .replies import ImageFile, image_file
from .state import Call, EmulatorConfig, EmulatorState, RenderMode

MAX_FETCH_BYTES = 64 * 1024 * 1024
WRONG_SIZE_PX = 64  # how much narrower than asked a "wrong-size" image is
# Ideogram's limit on the style references of one call together (its OpenAPI), in the strict reading of "MB".
IDEOGRAM_MAX_REFERENCES_BYTES = 10_000_000
# Credits charged per generation, as the pipeline estimates Segmind's prices.
CREDITS = DEFAULT_PRICES["segmind"]


class ApiError(Exception):
    """An answer other than success, with the status the API would send."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _check_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an http or https URL")
    return value


def _check_resolution(value: str) -> str:
    if value not in RESOLUTION_NAMES:
        raise ValueError(f"{value!r} is not one of the 69 allowed resolutions")
    return value


Url = Annotated[str, Field(max_length=4096), AfterValidator(_check_url)]
Resolution = Annotated[str, AfterValidator(_check_resolution)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SegmindRequest(_Strict):
    """The JSON body of ``POST /v1/ideogram-3-reframe``."""

    image: Url
    resolution: Resolution = "1024x1024"
    rendering_speed: RenderingSpeed = "DEFAULT"
    seed: Seed | None = None
    style_codes: list[StyleCode] | None = None
    style_reference_images: list[Url] | None = None
    color_palette: ColorPalette | None = None


class IdeogramRequest(_Strict):
    """The text fields of ``POST /v1/ideogram-v3/reframe`` (form values arrive as strings)."""

    resolution: Resolution
    seed: int | None = Field(None, ge=0, le=2_147_483_647)
    rendering_speed: Literal["FLASH", "TURBO", "BALANCED", "DEFAULT", "QUALITY"] = "DEFAULT"
    num_images: int = Field(1, ge=1, le=8)
    style_codes: list[StyleCode] | None = None
    color_palette: Json[ColorPalette] | None = None


def parse_segmind(body: bytes) -> SegmindRequest:
    try:
        document = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ApiError(400, "body: not valid JSON") from None
    if not isinstance(document, dict):
        raise ApiError(400, "body: must be a JSON object")
    try:
        return SegmindRequest.model_validate(document)
    except ValidationError as exc:
        raise ApiError(400, describe(exc)) from None


@dataclass(frozen=True)
class IdeogramForm:
    request: IdeogramRequest
    image: bytes
    style_references: list[bytes]


# Long for a reason: one pass over the multipart form, each field checked as Ideogram's contract says.
def parse_ideogram(content_type: str, body: bytes) -> IdeogramForm:
    """Read multipart/form-data: the ``image`` file, optional ``style_reference_images`` files, fields."""
    if not content_type.lower().startswith("multipart/form-data"):
        raise ApiError(400, "body: must be multipart/form-data")
    message = BytesParser(policy=HTTP).parsebytes(b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body)
    fields: dict[str, list[str]] = {}
    files: dict[str, list[bytes]] = {}
    for part in message.iter_parts() if message.is_multipart() else []:
        assert isinstance(part, Message)
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        if not isinstance(name, str) or not isinstance(payload, bytes):
            raise ApiError(400, "body: a form part has no name")
        if part.get_filename() is not None:
            files.setdefault(name, []).append(payload)
        else:
            fields.setdefault(name, []).append(payload.decode("utf-8", "replace"))
    if unknown_files := set(files) - {"image", "style_reference_images"}:
        raise ApiError(400, f"{sorted(unknown_files)[0]}: unexpected file field")
    if len(files.get("image", [])) != 1:
        raise ApiError(400, "image: exactly one image file is required")
    document: dict[str, object] = {}
    for name, values in fields.items():
        if name == "style_codes":
            document[name] = values
        elif len(values) > 1:
            raise ApiError(400, f"{name}: given more than once")
        else:
            document[name] = values[0]
    try:
        request = IdeogramRequest.model_validate(document)
    except ValidationError as exc:
        raise ApiError(400, describe(exc)) from None
    references = files.get("style_reference_images", [])
    if (total := sum(map(len, references))) > IDEOGRAM_MAX_REFERENCES_BYTES:
        raise ApiError(
            400, f"style_reference_images: {total} bytes in total, over the limit of {IDEOGRAM_MAX_REFERENCES_BYTES}"
        )
    if request.style_codes and references:
        raise ApiError(400, "style_codes: cannot be combined with style_reference_images")
    return IdeogramForm(request, files["image"][0], references)


def fetch(url: str, field: str, config: EmulatorConfig) -> bytes:
    """GET an image URL as the provider would; any failure is the caller's bad parameter (400)."""
    with requests.Session() as session:
        session.trust_env = False  # never route through a proxy from the environment
        try:
            with session.get(url, timeout=config.fetch_timeout_s, stream=True) as response:
                if response.status_code != 200:
                    raise ApiError(400, f"{field}: fetching the URL answered HTTP {response.status_code}")
                body = bytearray()
                for chunk in response.iter_content(1 << 16):
                    body += chunk
                    if len(body) > MAX_FETCH_BYTES:
                        raise ApiError(400, f"{field}: the URL serves more than {MAX_FETCH_BYTES} bytes")
                return bytes(body)
        except requests.RequestException as exc:
            raise ApiError(400, f"{field}: the URL could not be fetched ({type(exc).__name__})") from None


def check_image(body: bytes, field: str) -> Image.Image:
    """A whole JPEG, PNG or WebP image, decoded; anything else is a 400 naming the field."""
    fmt = sniff(body[:32])
    if fmt not in PROVIDER_FORMATS:
        raise ApiError(400, f"{field}: not a JPEG, PNG or WebP image ({fmt or 'unknown bytes'})")
    try:
        verify(body)
    except ImageCheckError as exc:
        raise ApiError(400, f"{field}: {exc}") from None
    image = Image.open(io.BytesIO(body))
    image.load()
    return image


def check_source(body: bytes, state: EmulatorState, call: Call) -> Image.Image:
    """The image to reframe: recorded in the stats, then held to the strict options."""
    config = state.config
    image = check_image(body, "image")
    call.source_digest = hashlib.sha256(body).hexdigest()
    width, height = image.size
    state.saw_source(call, len(body), width * height)
    if config.max_source_bytes is not None and len(body) > config.max_source_bytes:
        raise ApiError(400, f"image: {len(body)} bytes, over the limit of {config.max_source_bytes}")
    if config.max_source_pixels is not None and width * height > config.max_source_pixels:
        raise ApiError(400, f"image: {width}x{height} pixels, over the limit of {config.max_source_pixels}")
    if config.square_only and width != height:
        raise ApiError(400, f"image: {width}x{height} is not square; only square sources are accepted")
    return image


# The "offset" and "scaled" faults: the source at this fraction of the size at which it fits, placed at this
# fraction of the free room (x, y): off-centre low on the left, or smaller in the middle.
PLACEMENTS: dict[str, tuple[float, float, float]] = {"offset": (0.6, 0.15, 0.85), "scaled": (0.5, 0.5, 0.5)}
FAST_BACKGROUND = (128, 128, 128)  # the margins of the "fast" render
# The "repaint" fault: the middle of the source (this fraction of its width and height) painted over with
# other content of the same colours (the same region turned upside down and softened), as a model that
# reinvents the subject would.
REPAINTED_FRACTION = 0.6


def placed_box(source: Size, size: Size, fault: str | None) -> tuple[int, int, int, int]:
    """Where ``render`` puts the source: (left, top, width, height) in the result's pixels."""
    left, top, width, height = fitted_box(source, size)
    if fault not in PLACEMENTS:
        return left, top, width, height
    scale, across, down = PLACEMENTS[fault]
    width, height = max(1, round(width * scale)), max(1, round(height * scale))
    return round((size.width - width) * across), round((size.height - height) * down), width, height


def render(source: Image.Image, size: Size, mode: RenderMode, fault: str | None = None) -> Image.Image:
    canvas = _fast_canvas(source, size) if mode == "fast" else extend_canvas(source, size)
    if fault in PLACEMENTS:  # the source moved: only a blur of it stays where the local engine puts it
        canvas = canvas.filter(ImageFilter.GaussianBlur(max(size) / 40))
        left, top, width, height = placed_box(Size(*source.size), size, fault)
        canvas.paste(source.convert("RGB").resize((width, height), Image.Resampling.LANCZOS), (left, top))
    elif fault == "repaint":
        left, top, width, height = placed_box(Size(*source.size), size, fault)
        margin_x, margin_y = round(width * (1 - REPAINTED_FRACTION) / 2), round(height * (1 - REPAINTED_FRACTION) / 2)
        region = (left + margin_x, top + margin_y, left + width - margin_x, top + height - margin_y)
        patch = canvas.crop(region).transpose(Image.Transpose.ROTATE_180).filter(ImageFilter.GaussianBlur(2))
        canvas.paste(patch, region[:2])
    return canvas


def _fast_canvas(source: Image.Image, size: Size) -> Image.Image:
    """The source where the reframe keeps it (centred, scaled to fit) on a flat grey: what the source check
    expects of a faithful result, for a fraction of the local engine's CPU (no margins are invented)."""
    canvas = Image.new("RGB", size, FAST_BACKGROUND)
    left, top, width, height = fitted_box(Size(*source.size), size)
    fitted = source.convert("RGB").resize((width, height), Image.Resampling.BILINEAR, reducing_gap=3.0)
    canvas.paste(fitted, (left, top))
    return canvas


def generate(state: EmulatorState, source: Image.Image, call: Call) -> tuple[Image.Image, ImageFile]:
    """The model's work: reframe and encode the answer, then take the rest of the time the real service takes.
    ``latency_ms`` is the call's whole time from its request, as a client sees a generation's: fetching the
    source, rendering and encoding included (a provider's answer is ready when it says so)."""
    assert call.resolution is not None
    size = parse_size(call.resolution)
    if call.fault == "wrong-size":
        size = size._replace(width=size.width - WRONG_SIZE_PX)
    image = render(source, size, state.config.render, call.fault)
    result = image_file(image, state.config.image_format, call.fault)
    time.sleep(max(0.0, call.started + state.config.latency_ms / 1000 - time.monotonic()))
    return image, result


def random_seed(low: int, high: int) -> int:
    return low + int.from_bytes(os.urandom(4)) % (high - low + 1)
