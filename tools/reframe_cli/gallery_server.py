"""The review gallery served by ``reframe serve``: the page (``/``), a token of the bucket's state the page
polls to reload itself (``/version``) and the regenerate form's target (``POST /regenerate``). It binds
127.0.0.1 only; it reads the bucket and writes sidecars there, like any client of the stack.

Two guards keep other sites' pages out, since a POST pays for a generation and a page carries presigned URLs:
- only the names it is bound under are served (``127.0.0.1:PORT``, ``localhost:PORT``, ``[::1]:PORT``): a
  page on a domain rebound to 127.0.0.1 sends its own name as ``Host`` and gets 421 on every route;
- the regenerate form carries a token the server put in the page; a POST without it is refused before
  anything is written.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
from typing import Any

from werkzeug.exceptions import HTTPException
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from reframe_local import wsgi
from reframe_local.wsgi import QuietHandler, ThreadServer
from reframe_pipeline.domain.errors import ReframeError
from reframe_pipeline.settings import Settings

from . import gallery
from .errors import UserError
from .regenerate import Regeneration, regenerate

PRESIGN_S = 3600  # the page is rendered again at each reload: its links are always fresh
POLL_S = 2
_MAX_FORM_BYTES = 16384
_HTML = "text/html; charset=utf-8"


class Gallery:
    """The state behind the pages: the bucket, the page's form token, and the regenerations asked for that have
    not arrived yet."""

    def __init__(self, s3: Any, bucket: str, settings: Settings) -> None:
        self.s3 = s3
        self.bucket = bucket
        self.settings = settings
        # Put in every page's forms and asked back: a page this server did not serve cannot know it.
        self.token = secrets.token_urlsafe(32)
        self._lock = threading.Lock()
        self._asked: list[Regeneration] = []

    def manifests(self) -> list[dict[str, Any]]:
        return gallery.load_manifests(self.s3, self.bucket, self.settings.output_prefix)

    def version(self) -> str:
        """Changes whenever a manifest is written or removed, or a regeneration is asked for."""
        digest = hashlib.sha256()
        pages = self.s3.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=self.settings.output_prefix
        )
        for page in pages:
            for item in page.get("Contents", []):
                if item["Key"].endswith("/manifest.json"):
                    digest.update(f"{item['Key']}\0{item['ETag']}\0{item['LastModified']}\n".encode())
        with self._lock:
            digest.update(repr(self._asked).encode())
        return digest.hexdigest()[:16]

    def token_matches(self, given: str) -> bool:
        return hmac.compare_digest(given.encode(), self.token.encode())

    def regenerate(self, source: str, variant: str) -> Regeneration:
        asked = regenerate(self.s3, self.bucket, self.settings, source, variant)
        with self._lock:
            self._asked = [a for a in self._asked if (a.source, a.variant) != (source, variant)] + [asked]
        return asked

    def page(self, show: str, message: str | None = None) -> str:
        # The state is read before the manifests: a manifest written in between reloads the page once more,
        # where read after, it would be shown as seen and never loaded.
        version = self.version()
        manifests = self.manifests()
        seeds = gallery.seeds(manifests)
        with self._lock:  # a regeneration has arrived when its variant has the new seed
            self._asked = [a for a in self._asked if seeds.get((a.source, a.variant)) != a.seed]
            waiting = [
                f"regenerating {a.source} {a.variant} with seed {a.seed}"
                + (" (the source now has its own sidecar)" if a.created_sidecar else "")
                for a in self._asked
            ]
        url_of = gallery.presigner(self.s3, self.bucket, PRESIGN_S)
        return gallery.render(
            manifests,
            url_of,
            title=f"Reframe review: s3://{self.bucket}/{self.settings.output_prefix}",
            show=show,
            regenerate="regenerate",
            token=self.token,
            refresh_s=POLL_S,
            version=version,
            messages=([message] if message else []) + waiting,
            source_url=url_of,
            match_min=self.settings.source_match_min,
        )


def served_hosts(port: int) -> frozenset[str]:
    """The ``Host`` values of a request to this server by its own names: nothing else is served."""
    return frozenset(f"{name}:{port}" for name in ("127.0.0.1", "localhost", "[::1]"))


class App:
    """The WSGI application over ``state``; ``hosts`` is set once the port is bound."""

    def __init__(self, state: Gallery) -> None:
        self.state = state
        self.hosts: frozenset[str] = frozenset()

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        request.max_content_length = _MAX_FORM_BYTES
        try:
            response = self.respond(request)
        except HTTPException as exc:  # a form over the limit (413), say
            response = _text(exc.code or 400, f"{exc.description}\n")
        response.headers["Cache-Control"] = "no-store"
        return response(environ, start_response)

    def respond(self, request: Request) -> Response:
        if request.host.lower() not in self.hosts:
            return _text(421, f"this server answers to {', '.join(sorted(self.hosts))} only\n")
        if request.method == "GET" and request.path == "/":
            return Response(self.state.page(request.args.get("show", "all")), content_type=_HTML)
        if request.method == "GET" and request.path == "/version":
            return _text(200, self.state.version())
        if request.method == "POST" and request.path == "/regenerate":
            return self._regenerate(request)
        return _text(404, "not found\n")

    def _regenerate(self, request: Request) -> Response:
        # A form posted by another site's page (the browser says where it comes from) is refused.
        origin = request.headers.get("Origin")
        if origin is not None and origin != f"http://{request.host}":
            return _text(403, "cross-origin form refused\n")
        if not self.state.token_matches(request.form.get("token", "")):
            return _text(403, "the form's token is not this page's: reload the gallery and try again\n")
        source, variant = request.form.get("source", ""), request.form.get("variant", "")
        try:
            self.state.regenerate(source, variant)
        except (UserError, ReframeError) as exc:
            reason = exc.message if isinstance(exc, ReframeError) else str(exc)
            return Response(self.state.page("all", f"not regenerated: {reason}"), status=400, content_type=_HTML)
        return Response(status=303, headers={"Location": "./"})  # back to the page: a reload does not post again


def _text(status: int, body: str) -> Response:
    return Response(body, status=status, content_type="text/plain; charset=utf-8")


def start(state: Gallery, port: int = 0) -> ThreadServer:
    """Serve on 127.0.0.1:``port`` (0: a free one) from a daemon thread; ``stop()`` returns once it has ended."""
    app = App(state)
    server = make_server("127.0.0.1", port, app, threaded=True, request_handler=QuietHandler)
    app.hosts = served_hosts(server.server_port)  # known once bound: the Host names it answers to
    return wsgi.run(server, "gallery")
