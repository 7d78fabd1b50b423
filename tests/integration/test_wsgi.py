"""``reframe_local.wsgi``: a WSGI application served from a thread on a free loopback port, then stopped."""

from __future__ import annotations

from collections.abc import Iterable
from wsgiref.types import StartResponse, WSGIEnvironment

import pytest
import requests

from reframe_local import wsgi


def hello(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
    body = f"{environ['REQUEST_METHOD']} {environ['PATH_INFO']}".encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


def test_serves_on_loopback_until_stopped() -> None:
    with wsgi.serve(hello, "hello") as server:
        assert server.url.startswith("http://127.0.0.1:")
        response = requests.get(f"{server.url}/a/b", timeout=5)
        assert (response.status_code, response.text) == (200, "GET /a/b")
        assert server.thread.is_alive()
    assert not server.thread.is_alive()
    with pytest.raises(requests.ConnectionError):
        requests.get(server.url, timeout=5)
    server.stop()  # a second stop is harmless


def test_ipv6_loopback_url() -> None:
    assert wsgi.http_url("::1", 8080) == "http://[::1]:8080"
    assert wsgi.http_url("127.0.0.1", "8080") == "http://127.0.0.1:8080"
