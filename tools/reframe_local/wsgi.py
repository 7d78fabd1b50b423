"""The local HTTP servers' common ground: a WSGI application served by werkzeug from a thread of this process.

The emulator (``reframe_local.emulator``), the S3 stand-in (``s3_limits_server``) and the review gallery are
WSGI applications; ``serve`` runs one on 127.0.0.1 (or another loopback address) until ``stop()``.
(``servers.py`` starts such servers as child processes instead.)
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any
from wsgiref.types import WSGIApplication

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from .servers import HOST, StopsOnExit


class QuietHandler(WSGIRequestHandler):
    """No line per request: the servers' own endpoints (stats, logs) tell what happened."""

    def log_request(self, *args: Any) -> None:
        pass


def http_url(host: str, port: int | str) -> str:
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


@dataclass
class ThreadServer(StopsOnExit):
    """A bound werkzeug server answering from a daemon thread; ``stop()`` (or leaving ``with``) ends it."""

    server: BaseWSGIServer
    thread: threading.Thread = field(repr=False)

    @property
    def port(self) -> int:
        return self.server.server_port

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return http_url(str(host), port)

    def stop(self) -> None:
        """Safe to call twice."""
        if self.thread.is_alive():
            self.server.shutdown()  # from another thread than serve_forever's, as it must be
            self.thread.join()
        self.server.server_close()


def run(server: BaseWSGIServer, name: str) -> ThreadServer:
    """Serve an already bound ``server`` from a daemon thread called ``name``."""
    thread = threading.Thread(target=server.serve_forever, name=name, daemon=True)
    thread.start()
    return ThreadServer(server, thread)


def serve(app: WSGIApplication, name: str, port: int = 0, host: str = HOST) -> ThreadServer:
    """``app`` on ``host``:``port`` (0: a free port), many requests at a time, quiet."""
    return run(make_server(host, port, app, threaded=True, request_handler=QuietHandler), name)
