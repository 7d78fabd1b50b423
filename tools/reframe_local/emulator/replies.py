"""What the emulator answers: a reply, the call's surroundings an endpoint needs, and the answers both APIs
share (errors as each API sends them, injected status faults, generated images and their spoiled forms)."""

from __future__ import annotations

import io
import json
import os
import time
from dataclasses import dataclass, field
from email.utils import formatdate
from http import HTTPStatus
from typing import Any

from PIL import Image
from werkzeug.datastructures import Headers

from reframe_pipeline.domain.imaging import encode

from .state import NOT_IN_CONTRACT, Api, Call, EmulatorState, ImageFormat

RESULTS_PATH = "/_emulator/results/"
# Ideogram's account conditions (never Segmind's, whose is 406).
_REJECT_REASONS = {"402": "insufficient_funds", "402-daily-limit": "daily_limit"}
_FAULT_MESSAGES = {
    400: "bad request",
    401: "invalid API key",
    403: "forbidden",
    404: "model not found",
    406: "insufficient credits",
    429: "rate limit exceeded",
    500: "internal server error",
    502: "bad gateway",
    503: "service unavailable",
    504: "gateway timeout",
}
_EXTENSIONS = {"jpeg": "jpg", "png": "png"}


@dataclass
class Reply:
    status: int  # 0: drop the connection without answering
    body: bytes = b""
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)
    billed: int = 0


@dataclass(frozen=True)
class Exchange:
    """What an endpoint needs besides the body: the state, the emulator's own URL (for the URLs it hands
    out) and the request's headers (names in any case)."""

    state: EmulatorState
    base_url: str
    headers: Headers

    def result_url(self, name: str) -> str:
        return f"{self.base_url}{RESULTS_PATH}{name}"

    def keep(self, call: Call, result: ImageFile) -> str:
        """Keep a call's image to serve at a result URL; its name there."""
        return self.state.put_result(call, result.body, result.content_type, result.ext)


@dataclass(frozen=True)
class ImageFile:
    """A generated image as it is answered: bytes, content type, file extension."""

    body: bytes
    content_type: str
    ext: str


def json_reply(status: int, document: Any, **headers: str) -> Reply:
    return Reply(status, json.dumps(document).encode(), headers=headers)


def error_reply(status: int, message: str, api: Api | None = None, reason: str = "", **headers: str) -> Reply:
    """An error as the API sends it: ``{"error"}``, and on Ideogram's endpoint a ``reject_reason`` too (its
    documented ones where the status has one, else the status's name)."""
    document = {"error": message}
    if api == "ideogram":
        document["reject_reason"] = reason or HTTPStatus(status).phrase.lower().replace(" ", "_")
    return json_reply(status, document, **headers)


def status_fault(kind: str, api: Api, key: str) -> Reply | None:
    """The answer of a fault that replaces the whole call, as ``api`` sends that status; None when the API
    never sends it (the fault is used up without effect)."""
    if kind in NOT_IN_CONTRACT[api]:
        return None
    if kind == "reset":
        return Reply(0)
    if kind == "html-500":
        page = b"<html><head><title>500 Internal Server Error</title></head><body>Server Error</body></html>"
        return Reply(500, page, "text/html; charset=utf-8")
    status = int(kind[:3])
    if status == 429 and api == "ideogram":  # never a Retry-After on Ideogram's generation calls
        return error_reply(429, "too many generations in flight (injected)", api, "inflight_limit")
    if kind == "429":
        return error_reply(429, "rate limit exceeded", api, **{"Retry-After": "1"})
    if kind == "429-date":
        return error_reply(429, "rate limit exceeded", api, **{"Retry-After": formatdate(time.time() + 2, usegmt=True)})
    if kind in _REJECT_REASONS:
        reason = _REJECT_REASONS[kind]
        return error_reply(402, f"payment required: {reason} (injected)", api, reason)
    if status == 401:  # echoes the key, as a refused one is
        return error_reply(401, f"invalid key {key} (injected)", api)
    return error_reply(status, f"{_FAULT_MESSAGES[status]} (injected)", api)


def image_file(image: Image.Image, fmt: ImageFormat, fault: str | None = None) -> ImageFile:
    """The generated image encoded as ``fmt``; a "garbage" or "truncated" fault answers bytes under the same
    label that are not a whole image."""
    content_type, ext = f"image/{fmt}", _EXTENSIONS[fmt]
    if fault == "garbage":
        return ImageFile(b"\x00" + os.urandom(4095), content_type, ext)
    body = _encode(image, fmt)
    if fault == "truncated":
        body = body[: len(body) // 2]
    return ImageFile(body, content_type, ext)


def _encode(image: Image.Image, fmt: ImageFormat) -> bytes:
    if fmt != "png":
        return encode(image, fmt)
    # The fastest PNG level (a third of the time of the default): the emulator's CPU is the benchmark's.
    out = io.BytesIO()
    image.save(out, "PNG", compress_level=1)
    return out.getvalue()
