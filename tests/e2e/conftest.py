"""Helpers for end-to-end tests that run the `reframe` command as a child process."""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from standardwebhooks import Webhook

from reframe_pipeline.settings import Settings


def clean_env() -> dict[str, str]:
    """This machine's environment without any setting that would change what the command does
    (a developer's provider key, endpoint or prefixes)."""
    settings = {name.upper() for name in Settings.model_fields}
    return {
        name: value
        for name, value in os.environ.items()
        if name not in settings and not name.startswith(("AWS_", "POWERTOOLS_"))
    }


class Receiver:
    """A webhook receiver on 127.0.0.1 that keeps what is POSTed to it; ``verified`` checks each delivery with
    the standardwebhooks library's own verifier, against the secret the command printed."""

    def __init__(self, server: ThreadingHTTPServer) -> None:
        self.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/reframe"
        self.deliveries: list[tuple[bytes, dict[str, str]]] = []
        self._lock = threading.Lock()

    def keep(self, body: bytes, headers: dict[str, str]) -> None:
        with self._lock:
            self.deliveries.append((body, headers))

    def verified(self, printed: str) -> list[dict[str, Any]]:
        match = re.search(r"verify with WEBHOOK_SECRET=(whsec_\S+)", printed)
        assert match, printed
        with self._lock:
            return [Webhook(match.group(1)).verify(body, headers) for body, headers in self.deliveries]


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    state: list[Receiver] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["content-length"]))
            state[0].keep(body, {k.lower(): v for k, v in self.headers.items()})
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.append(Receiver(server))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state[0]
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
