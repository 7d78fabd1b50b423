"""The emulator's HTTP side, a werkzeug application: routing, the steps every reframe call takes, the admin
endpoints, and the server binding loopback addresses only.

Each reframe call runs: key check, in-flight limit, next fault, validation, work (``segmind.py``,
``ideogram.py``). Errors are JSON ``{"error": "<field>: <reason>"}``; Ideogram's also carry ``reject_reason``
(``insufficient_funds``, ``daily_limit``, ``inflight_limit`` as documented; else the status's name). A 401
echoes the key it received.

Admin endpoints (JSON, no key): ``GET /_emulator/health``, ``GET /_emulator/stats``,
``GET|POST /_emulator/config``, ``GET|POST /_emulator/faults``, ``POST /_emulator/reset``, and
``GET /_emulator/results/<name>`` serving result URLs (Ideogram's, Segmind v2's) until they expire.
Fault kinds are listed in ``state.py``.
"""

from __future__ import annotations

import hmac
import ipaddress
import socket
import struct
import time
import traceback
from collections.abc import Callable, Iterable
from wsgiref.types import StartResponse, WSGIEnvironment

from pydantic import BaseModel, ValidationError
from werkzeug.serving import ThreadedWSGIServer
from werkzeug.wrappers import Request, Response

from reframe_local.wsgi import QuietHandler, http_url
from reframe_pipeline.domain.sidecar import describe

from . import ideogram, segmind
from .api import ApiError
from .replies import RESULTS_PATH, Exchange, Reply, error_reply, json_reply, status_fault
from .state import WHOLE_CALL_FAULTS, Call, ConfigUpdate, EmulatorConfig, EmulatorState, FaultsUpdate, slow_ms

MAX_BODY_BYTES = 64 * 1024 * 1024
Work = Callable[[Exchange, bytes, Call], Reply]
# The reframe calls by path: (endpoint's name in the stats, key header, work).
_CALLS: dict[str, tuple[str, str, Work]] = {
    segmind.PATH: ("segmind", "x-api-key", segmind.reframe),
    segmind.V2_PATH: ("segmind-v2", "x-api-key", segmind.submit),
    ideogram.PATH: ("ideogram", "Api-Key", ideogram.reframe),
}


class DropConnection(ConnectionAbortedError):
    """Raised by the application to end the exchange with a TCP reset instead of an answer."""


class Emulator:
    """The WSGI application over one ``EmulatorState``."""

    def __init__(self, state: EmulatorState) -> None:
        self.state = state

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        request = Request(environ)
        exchange = Exchange(self.state, _base_url(environ), request.headers)
        reply, request_id = self._route(request, exchange)
        if reply.status == 0:
            raise DropConnection
        response = Response(reply.body, reply.status, headers={"Content-Type": reply.content_type, **reply.headers})
        if request_id:
            response.headers["x-request-id"] = request_id
        return response(environ, start_response)

    def _route(self, request: Request, exchange: Exchange) -> tuple[Reply, str | None]:
        if request.method == "GET":
            return self._get(request.path, exchange)
        if request.method != "POST":
            return error_reply(405, f"no route for {request.method} {request.path}"), None
        try:
            body = _read_body(request)
        except ApiError as exc:
            return error_reply(exc.status, exc.message), None
        if request.path in _CALLS:
            return self._api_call(exchange, body, *_CALLS[request.path])
        return self._admin_post(request.path, body), None

    def _get(self, path: str, exchange: Exchange) -> tuple[Reply, str | None]:
        if path == "/_emulator/health":
            return json_reply(200, {"status": "ok"}), None
        if path == "/_emulator/stats":
            return json_reply(200, self.state.stats()), None
        if path == "/_emulator/config":
            return json_reply(200, self.state.config.public()), None
        if path == "/_emulator/faults":
            return json_reply(200, self.state.faults()), None
        if path.startswith(RESULTS_PATH):
            return self._result(path.removeprefix(RESULTS_PATH)), None
        if match := segmind.V2_REQUEST.fullmatch(path):
            request_id, status_only = match[1], bool(match[2])
            endpoint = "segmind-v2-status" if status_only else "segmind-v2-response"

            def work(exchange: Exchange, _: bytes, call: Call) -> Reply:
                return segmind.poll(exchange, request_id, status_only, call)

            return self._api_call(exchange, b"", endpoint, "x-api-key", work)
        return error_reply(404, f"no route for GET {path}"), None

    def _result(self, name: str) -> Reply:
        result = self.state.get_result(name)
        if result is None:
            return error_reply(404, "no such result, or it has expired")
        if result.failures:
            return error_reply(503, "service unavailable (injected)")
        return Reply(200, result.body, result.content_type)

    def _admin_post(self, path: str, body: bytes) -> Reply:
        if path == "/_emulator/reset":
            self.state.reset()
            return json_reply(200, {"status": "reset"})
        if path == "/_emulator/config":
            update = _admin_body(ConfigUpdate, body)
            return update if isinstance(update, Reply) else json_reply(200, self.state.configure(update).public())
        if path == "/_emulator/faults":
            faults = _admin_body(FaultsUpdate, body)
            return faults if isinstance(faults, Reply) else json_reply(200, self.state.set_faults(faults))
        return error_reply(404, f"no route for POST {path}")

    def _api_call(
        self, exchange: Exchange, body: bytes, endpoint: str, key_header: str, work: Work
    ) -> tuple[Reply, str]:
        call = self.state.begin(endpoint)
        reply = self._authorised_call(exchange, key_header, body, call, work)
        call.status = reply.status
        call.duration_ms = round((time.monotonic() - call.started) * 1000, 1)
        # Recorded before answering, so a client reading the stats after its answer sees its call.
        self.state.record(call, reply.billed)
        return reply, call.request_id

    def _authorised_call(self, exchange: Exchange, key_header: str, body: bytes, call: Call, work: Work) -> Reply:
        given, api = exchange.headers.get(key_header, ""), call.api
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
            return work(exchange, body, call)
        except ApiError as exc:
            return error_reply(exc.status, exc.message, api)
        except Exception as exc:
            traceback.print_exc()  # an emulator bug: answered and counted like a provider failure
            return error_reply(500, f"emulator error: {type(exc).__name__}: {exc}", api)
        finally:
            self.state.release(call)


def _read_body(request: Request) -> bytes:
    try:
        length = int(request.headers.get("Content-Length") or 0)
    except ValueError:
        raise ApiError(400, "body: the Content-Length header is not a number") from None
    if length > MAX_BODY_BYTES:
        raise ApiError(413, f"body: {length} bytes, over the limit of {MAX_BODY_BYTES}")
    return request.get_data()


def _admin_body[M: BaseModel](model: type[M], body: bytes) -> M | Reply:
    try:
        return model.model_validate_json(body or b"{}")
    except ValidationError as exc:
        return error_reply(400, describe(exc))


def _base_url(environ: WSGIEnvironment) -> str:
    """The emulator's own URL, as bound (not as the client named it), for the URLs it hands out."""
    return http_url(environ["SERVER_NAME"], environ["SERVER_PORT"])


class _Handler(QuietHandler):
    """Able to drop a connection with a reset."""

    def connection_dropped(self, error: BaseException, environ: WSGIEnvironment | None = None) -> None:
        if isinstance(error, DropConnection):
            # Closed with SO_LINGER 0: the client sees a TCP reset, not an answer.
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
        self.close_connection = True


class EmulatorServer(ThreadedWSGIServer):
    """The emulator bound to an address (``url``), not yet serving: ``serve_forever()``, then ``shutdown()``."""

    def __init__(self, host: str, port: int, state: EmulatorState) -> None:
        super().__init__(host, port, Emulator(state), handler=_Handler)
        self.state = state

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return http_url(str(host), port)


def make_server(host: str, port: int, config: EmulatorConfig) -> EmulatorServer:
    """A bound, not yet serving, emulator; only loopback addresses are accepted."""
    try:
        address = ipaddress.ip_address("127.0.0.1" if host == "localhost" else host.strip("[]"))
    except ValueError:
        raise ValueError(f"{host!r} is not an IP address; the emulator binds loopback addresses only") from None
    if not address.is_loopback:
        raise ValueError(f"{host} is not a loopback address; the emulator binds loopback addresses only")
    return EmulatorServer(str(address), port, EmulatorState(config))
