"""The HTTP side: routing, the two reframe endpoints, fault injection, admin endpoints and the CLI.

Each endpoint follows its API's contract (the OpenAPI documents in tests/contracts/ check its answers);
anything else happens only as an injected fault (``state.py``).

Reframe endpoints (each call runs: key check, in-flight limit, next fault, validation, work):
- ``POST /v1/ideogram-3-reframe``: Segmind; ``x-api-key``; JSON body; answers the image bytes
  (or JSON ``{"image": base64}`` / ``{"image": url}`` as ``response_format`` says).
- ``POST /v1/ideogram-v3/reframe``: Ideogram; ``Api-Key``; multipart form (style codes of 8 hex
  characters, style references at most 10 MB in total); answers
  ``{"created", "data": [{"url", "resolution", "seed", "is_image_safe", "prompt"}]}``, ``resolution``
  being the served image's.
- ``POST /v2/ideogram-3-reframe``: Segmind's asynchronous API; as v1, but it validates, fetches the
  source, bills, and answers at once ``{"request_id", "status": "QUEUED", "poll_url", "status_url",
  "response_url"}`` while the job runs in the background. ``GET /v2/requests/<id>/status`` answers
  ``{"request_id", "status"}`` (QUEUED, PROCESSING, COMPLETED; FAILED with 422 and ``error``);
  ``GET /v2/requests/<id>`` the same, plus ``"output": "<image URL>", "metrics": {...}`` once
  COMPLETED. Both need ``x-api-key``, take the next fault like any call, and answer 404 once the job
  ended more than ``result_ttl_s`` ago. With ``serve_v2`` off the POST answers 404 "model not found".
Errors are JSON ``{"error": "<field>: <reason>"}``; Ideogram's also carry ``reject_reason``
(``insufficient_funds``, ``daily_limit``, ``inflight_limit`` as documented; else the status's name). A 401
echoes the key it received.

Admin endpoints (JSON, no key): ``GET /_emulator/health``, ``GET /_emulator/stats``,
``GET|POST /_emulator/config``, ``GET|POST /_emulator/faults``, ``POST /_emulator/reset``, and
``GET /_emulator/results/<name>`` serving result URLs (Ideogram's, Segmind v2's) until they expire.
Fault kinds are listed in ``state.py``.
"""

from __future__ import annotations

import argparse
import base64
import hmac
import io
import ipaddress
import json
import os
import re
import signal
import socket
import struct
import sys
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import formatdate
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from PIL import Image
from pydantic import BaseModel, ValidationError

from reframe_pipeline.domain.imaging import encode
from reframe_pipeline.domain.resolutions import parse_size
from reframe_pipeline.domain.sidecar import describe

from . import api
from .api import ApiError
from .state import (
    NOT_IN_CONTRACT,
    WHOLE_CALL_FAULTS,
    Api,
    Call,
    ConfigUpdate,
    EmulatorConfig,
    EmulatorState,
    FaultsUpdate,
    Job,
    slow_ms,
)

SEGMIND_PATH = "/v1/ideogram-3-reframe"
SEGMIND_V2_PATH = "/v2/ideogram-3-reframe"
V2_REQUESTS_PATH = "/v2/requests/"
_V2_REQUEST = re.compile(re.escape(V2_REQUESTS_PATH) + r"([^/]+)(/status)?")
IDEOGRAM_PATH = "/v1/ideogram-v3/reframe"
RESULTS_PATH = "/_emulator/results/"
MAX_BODY_BYTES = 64 * 1024 * 1024
WRONG_SIZE_PX = 64  # how much narrower than asked a "wrong-size" image is
# Faults whose answer carries no usable image: not billed.
_SPOILED = frozenset({"garbage", "truncated", "unsafe"})
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


@dataclass
class Reply:
    status: int  # 0: close the connection without answering
    body: bytes = b""
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)
    billed: int = 0


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
    if status == 401:  # echoes the key, as a refused one is (see Handler._authorised_call)
        return error_reply(401, f"invalid key {key} (injected)", api)
    return error_reply(status, f"{_FAULT_MESSAGES[status]} (injected)", api)


class EmulatorServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], state: EmulatorState) -> None:
        super().__init__(address, Handler)
        self.state = state

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        host = str(host)
        return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


class _EmulatorServer6(EmulatorServer):
    address_family = socket.AF_INET6


def make_server(host: str, port: int, config: EmulatorConfig) -> EmulatorServer:
    """A bound, not yet serving, emulator; only loopback addresses are accepted."""
    try:
        address = ipaddress.ip_address("127.0.0.1" if host == "localhost" else host.strip("[]"))
    except ValueError:
        raise ValueError(f"{host!r} is not an IP address; the emulator binds loopback addresses only") from None
    if not address.is_loopback:
        raise ValueError(f"{host} is not a loopback address; the emulator binds loopback addresses only")
    server_class = _EmulatorServer6 if address.version == 6 else EmulatorServer
    return server_class((str(address), port), EmulatorState(config))


# Long for a reason: http.server routes every request of a server through one handler class; each endpoint
# is a method of its own below.
class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as clients with a session expect
    disable_nagle_algorithm = True  # else headers and body, sent apart, stall on delayed ACKs (40 ms)
    server: EmulatorServer

    @property
    def state(self) -> EmulatorState:
        return self.server.state

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: benchmarks send thousands of calls; the stats endpoint tells what happened."""

    # Routing

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path == "/_emulator/health":
            self._send(json_reply(200, {"status": "ok"}))
        elif path == "/_emulator/stats":
            self._send(json_reply(200, self.state.stats()))
        elif path == "/_emulator/config":
            self._send(json_reply(200, self.state.config.public()))
        elif path == "/_emulator/faults":
            self._send(json_reply(200, self.state.faults()))
        elif path.startswith(RESULTS_PATH):
            result = self.state.get_result(path.removeprefix(RESULTS_PATH))
            if result is None:
                self._send(error_reply(404, "no such result, or it has expired"))
            elif result.failures:
                self._send(error_reply(503, "service unavailable (injected)"))
            else:
                self._send(Reply(200, result.body, result.content_type))
        elif match := _V2_REQUEST.fullmatch(path):
            request_id, status_only = match[1], bool(match[2])
            endpoint = "segmind-v2-status" if status_only else "segmind-v2-response"
            self._api_call(endpoint, "x-api-key", b"", lambda _, call: self._v2_poll(request_id, status_only, call))
        else:
            self._send(error_reply(404, f"no route for GET {path}"))

    def do_POST(self) -> None:
        path = self.path.split("?", 1)[0]
        try:
            body = self._read_body()
        except ApiError as exc:
            self.close_connection = True  # the body was not read: the stream is out of step
            self._send(error_reply(exc.status, exc.message))
            return
        if path == SEGMIND_PATH:
            self._api_call("segmind", "x-api-key", body, self._segmind)
        elif path == SEGMIND_V2_PATH:
            self._api_call("segmind-v2", "x-api-key", body, self._segmind_v2)
        elif path == IDEOGRAM_PATH:
            self._api_call("ideogram", "Api-Key", body, self._ideogram)
        elif path == "/_emulator/reset":
            self.state.reset()
            self._send(json_reply(200, {"status": "reset"}))
        elif path == "/_emulator/config":
            update = self._admin_body(ConfigUpdate, body)
            if update is not None:
                self._send(json_reply(200, self.state.configure(update).public()))
        elif path == "/_emulator/faults":
            faults = self._admin_body(FaultsUpdate, body)
            if faults is not None:
                self._send(json_reply(200, self.state.set_faults(faults)))
        else:
            self._send(error_reply(404, f"no route for POST {path}"))

    def _admin_body[M: BaseModel](self, model: type[M], body: bytes) -> M | None:
        try:
            return model.model_validate_json(body or b"{}")
        except ValidationError as exc:
            self._send(error_reply(400, describe(exc)))
            return None

    # The reframe endpoints

    def _api_call(self, endpoint: str, key_header: str, body: bytes, work: Callable[[bytes, Call], Reply]) -> None:
        started = time.monotonic()
        call = self.state.begin(endpoint)
        reply = self._authorised_call(key_header, body, call, work)
        call.status = reply.status
        call.duration_ms = round((time.monotonic() - started) * 1000, 1)
        # Recorded before answering, so a client reading the stats after its answer sees its call.
        self.state.record(call, reply.billed)
        self._send(reply, request_id=call.request_id)

    def _authorised_call(self, key_header: str, body: bytes, call: Call, work: Callable[[bytes, Call], Reply]) -> Reply:
        given, api = self.headers.get(key_header, ""), call.api
        if not hmac.compare_digest(given.encode(), self.state.config.api_key.encode()):
            # Echoes the key received, as real services sometimes do: the client must scrub it from what it logs.
            return error_reply(401, f"invalid key {given}" if given else f"missing {key_header} header", api)
        if call.endpoint == "segmind-v2" and not self.state.config.serve_v2:
            return error_reply(404, "model not found")  # before any fault: those are for the v1 call that follows
        if not self.state.admit(call):
            return error_reply(429, "too many requests in flight", api, "inflight_limit")
        try:
            call.fault = self.state.next_fault()
            if call.fault in WHOLE_CALL_FAULTS and (reply := status_fault(call.fault, api, given)) is not None:
                return reply
            time.sleep(slow_ms(call.fault) / 1000)
            return work(body, call)
        except ApiError as exc:
            return error_reply(exc.status, exc.message, api)
        except Exception as exc:
            traceback.print_exc()  # an emulator bug: answered and counted like a provider failure
            return error_reply(500, f"emulator error: {type(exc).__name__}: {exc}", api)
        finally:
            self.state.release(call)

    def _segmind_source(self, body: bytes, call: Call) -> tuple[api.SegmindRequest, Image.Image]:
        """The Segmind request (v1 or v2) checked, its source and style references fetched and checked."""
        request = api.parse_segmind(body)
        call.resolution, call.rendering_speed = request.resolution, request.rendering_speed
        call.seed = request.seed if request.seed is not None else _random_seed(100, 999_999)
        config = self.state.config
        source = api.check_source(api.fetch(request.image, "image", config), self.state, call)
        call.source_size = source.size
        for index, url in enumerate(request.style_reference_images or []):
            field_name = f"style_reference_images[{index}]"
            api.check_image(api.fetch(url, field_name, config), field_name)
            call.style_references += 1
        return request, source

    def _charge(self, request: api.SegmindRequest, call: Call) -> dict[str, str]:
        """Spend a generation's credits; Segmind's headers telling so."""
        credits = api.CREDITS[request.rendering_speed]
        return {"x-credits-consumed": str(credits), "x-remaining-credits": str(self.state.spend(call, credits))}

    def _segmind(self, body: bytes, call: Call) -> Reply:
        request, source = self._segmind_source(body, call)
        image = _generate(self.state, source, call)
        if call.fault == "unsafe":
            return error_reply(422, "the image did not pass the safety check")
        if call.fault in ("garbage", "truncated"):
            return _broken_png(image, call.fault)
        fmt = self.state.config.response_format
        encoded = _encode(image, "jpeg" if fmt == "jpeg" else "png")
        headers = self._charge(request, call)
        if fmt in ("png", "jpeg"):
            return Reply(200, encoded, f"image/{fmt}", headers, billed=1)
        if fmt == "json-base64":
            document = {"image": base64.b64encode(encoded).decode()}
        else:
            document = {"image": self._result_url(self.state.put_result(call, encoded, "image/png", "png"))}
        return Reply(200, json.dumps(document).encode(), headers=headers, billed=1)

    def _segmind_v2(self, body: bytes, call: Call) -> Reply:
        request, source = self._segmind_source(body, call)
        self.state.add_job(call.request_id)
        results_url = self._result_url("")
        threading.Thread(target=_run_job, args=(self.state, results_url, source, call), daemon=True).start()
        status_url = f"{self.server.url}{V2_REQUESTS_PATH}{call.request_id}/status"
        document = {
            "request_id": call.request_id,
            "status": "QUEUED",
            "poll_url": status_url,
            "status_url": status_url,
            "response_url": status_url.removesuffix("/status"),
        }
        # Billed when accepted, whatever happens to the job (a paid request is only recoverable by its id),
        # except a job whose output comes out broken: like a broken v1 answer, it carries no usable image.
        billed = 0 if call.fault in _SPOILED else 1
        return Reply(200, json.dumps(document).encode(), headers=self._charge(request, call), billed=billed)

    def _v2_poll(self, request_id: str, status_only: bool, call: Call) -> Reply:
        call.request_id = request_id
        job = self.state.get_job(request_id)
        if job is None:
            return error_reply(404, "no such request, or it has expired")
        return _job_reply(request_id, job, status_only)

    def _ideogram(self, body: bytes, call: Call) -> Reply:
        form = api.parse_ideogram(self.headers.get("Content-Type", ""), body)
        request = form.request
        call.resolution, call.rendering_speed = request.resolution, request.rendering_speed
        call.seed = request.seed if request.seed is not None else _random_seed(0, 2_147_483_647)
        source = api.check_source(form.image, self.state, call)
        call.source_size = source.size
        for index, reference in enumerate(form.style_references):
            api.check_image(reference, f"style_reference_images[{index}]")
            call.style_references += 1
        image = _generate(self.state, source, call)
        safe = call.fault != "unsafe"
        result = _result_file(image, call.fault, self.state.config)
        data = []
        for index in range(request.num_images):
            item: dict[str, Any] = {
                "resolution": f"{image.width}x{image.height}",  # what is served ("wrong-size" included)
                "seed": (call.seed + index) % 2_147_483_648,
                "is_image_safe": safe,
                "prompt": f"Reframed to {request.resolution}",
            }
            if safe:
                item["url"] = self._result_url(self.state.put_result(call, *result))
            data.append(item)
        billed = 0 if call.fault in _SPOILED else request.num_images
        created = datetime.now(UTC).isoformat(timespec="seconds")
        return Reply(200, json.dumps({"created": created, "data": data}).encode(), billed=billed)

    def _result_url(self, name: str) -> str:
        return f"{self.server.url}{RESULTS_PATH}{name}"

    # Transport

    def _read_body(self) -> bytes:
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            raise ApiError(400, "body: the Content-Length header is not a number") from None
        if length > MAX_BODY_BYTES:
            raise ApiError(413, f"body: {length} bytes, over the limit of {MAX_BODY_BYTES}")
        return self.rfile.read(length) if length > 0 else b""

    def _send(self, reply: Reply, request_id: str | None = None) -> None:
        if reply.status == 0:
            # Abort with a TCP reset: the client sees the connection drop, not an answer.
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
            self.close_connection = True
            return
        try:
            self.send_response(reply.status)
            self.send_header("Content-Type", reply.content_type)
            self.send_header("Content-Length", str(len(reply.body)))
            if request_id:
                self.send_header("x-request-id", request_id)
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(reply.body)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client gave up (its timeout): nothing to do


def _generate(state: EmulatorState, source: Image.Image, call: Call) -> Image.Image:
    """The model's work: reframe, then take the time the real service takes."""
    assert call.resolution is not None
    size = parse_size(call.resolution)
    if call.fault == "wrong-size":
        size = size._replace(width=size.width - WRONG_SIZE_PX)
    image = api.render(source, size, state.config.render, call.fault)
    time.sleep(state.config.latency_ms / 1000)
    return image


def _run_job(state: EmulatorState, results_url: str, source: Image.Image, call: Call) -> None:
    """A v2 job, in its own thread: generate, then end with the output's URL or the failure."""
    state.start_job(call.request_id)
    try:
        image = _generate(state, source, call)
        if call.fault == "unsafe":
            state.end_job(call.request_id, error="the image did not pass the safety check")
        elif call.fault == "v2-fail":
            state.end_job(call.request_id, error="the generation failed (injected)")
        else:
            name = state.put_result(call, *_result_file(image, call.fault, state.config))
            state.end_job(call.request_id, output=results_url + name)
    except Exception as exc:
        traceback.print_exc()  # an emulator bug: the job fails as a provider's would
        state.end_job(call.request_id, error=f"emulator error: {type(exc).__name__}: {exc}")


def _job_reply(request_id: str, job: Job, status_only: bool) -> Reply:
    document: dict[str, Any] = {"request_id": request_id, "status": job.status}
    if job.status == "FAILED":
        return json_reply(422, {**document, "error": job.error})
    if job.status == "COMPLETED" and not status_only:
        document |= {"output": job.output, "metrics": job.metrics()}
    return json_reply(200, document)


def _result_file(image: Image.Image, fault: str | None, config: EmulatorConfig) -> tuple[bytes, str, str]:
    """(body, content type, extension) of a result served by URL (Ideogram, Segmind v2)."""
    if fault in ("garbage", "truncated"):
        return _broken_png(image, fault).body, "image/png", "png"
    if config.response_format == "jpeg":
        return _encode(image, "jpeg"), "image/jpeg", "jpg"
    return _encode(image, "png"), "image/png", "png"


def _random_seed(low: int, high: int) -> int:
    return low + int.from_bytes(os.urandom(4)) % (high - low + 1)


def _encode(image: Image.Image, fmt: str) -> bytes:
    if fmt != "png":
        return encode(image, fmt)
    # The fastest PNG level (a third of the time of the default): the emulator's CPU is the benchmark's.
    out = io.BytesIO()
    image.save(out, "PNG", compress_level=1)
    return out.getvalue()


def _broken_png(image: Image.Image, kind: str) -> Reply:
    """A 200 labelled image/png whose bytes are not a whole image."""
    if kind == "garbage":
        return Reply(200, b"\x00" + os.urandom(4095), "image/png")
    png = _encode(image, "png")
    return Reply(200, png[: len(png) // 2], "image/png")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="reframe emulator",
        description="A Segmind-compatible (and Ideogram-compatible) reframe server for tests and benchmarks.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="loopback address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="port to bind (default: any free port)")
    parser.add_argument("--api-key", required=True, help="the key clients must send")
    parser.add_argument("--latency-ms", type=int, default=0, help="added latency per generation")
    parser.add_argument("--max-in-flight", type=int, default=None, help="answer 429 above this many calls")
    parser.add_argument("--square-only", action="store_true", help="reject non-square sources (400)")
    parser.add_argument("--max-source-bytes", type=int, default=None, help="reject larger sources (400)")
    parser.add_argument("--max-source-pixels", type=int, default=None, help="reject larger sources (400)")
    args = parser.parse_args(argv)
    config = EmulatorConfig(
        api_key=args.api_key,
        latency_ms=args.latency_ms,
        max_in_flight=args.max_in_flight,
        square_only=args.square_only,
        max_source_bytes=args.max_source_bytes,
        max_source_pixels=args.max_source_pixels,
    )
    try:
        server = make_server(args.host, args.port, config)
    except (ValueError, OSError) as exc:
        print(f"emulator: {exc}", file=sys.stderr)
        return 2
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    # Served from a thread: shutdown() must not be called from the thread running serve_forever().
    serving = threading.Thread(target=server.serve_forever, name="emulator", daemon=True)
    serving.start()
    print(f"emulator listening on {server.url}", flush=True)
    stop.wait()
    server.shutdown()
    server.server_close()
    return 0
