"""The review gallery served by ``reframe serve``: the page (``/``), a token of the bucket's state the page
polls to reload itself (``/version``) and the regenerate form's target (``POST /regenerate``). It binds
127.0.0.1 only; it reads the bucket and writes sidecars there, like any client of the stack."""

from __future__ import annotations

import hashlib
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from reframe_pipeline.domain.errors import ReframeError
from reframe_pipeline.settings import Settings

from . import gallery
from .errors import UserError
from .regenerate import Regeneration, regenerate

PRESIGN_S = 3600  # the page is rendered again at each reload: its links are always fresh
POLL_S = 2
_MAX_FORM_BYTES = 16384


class Gallery:
    """The state behind the pages: the bucket, and the regenerations asked for that have not arrived yet."""

    def __init__(self, s3: Any, bucket: str, settings: Settings) -> None:
        self.s3 = s3
        self.bucket = bucket
        self.settings = settings
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
        seeds = {
            ((m.get("source") or {}).get("key"), v.get("name")): v.get("seed")
            for m in manifests
            for v in m.get("variants", [])
        }
        with self._lock:  # a regeneration has arrived when its variant has the new seed
            self._asked = [a for a in self._asked if seeds.get((a.source, a.variant)) != a.seed]
            waiting = [
                f"regenerating {a.source} {a.variant} with seed {a.seed}"
                + (" (the source now has its own sidecar)" if a.created_sidecar else "")
                for a in self._asked
            ]
        return gallery.render(
            manifests,
            gallery.presigner(self.s3, self.bucket, PRESIGN_S),
            title=f"Reframe review: s3://{self.bucket}/{self.settings.output_prefix}",
            show=show,
            regenerate="regenerate",
            refresh_s=POLL_S,
            version=version,
            messages=([message] if message else []) + waiting,
        )


def start(state: Gallery, port: int = 0) -> ThreadingHTTPServer:
    """Serve on 127.0.0.1:``port`` (0: a free one) from a daemon thread; stop with shutdown()."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            url = urlsplit(self.path)
            if url.path == "/":
                show = parse_qs(url.query).get("show", ["all"])[0]
                self._send(200, state.page(show), "text/html; charset=utf-8")
            elif url.path == "/version":
                self._send(200, state.version(), "text/plain; charset=utf-8")
            else:
                self._send(404, "not found\n", "text/plain; charset=utf-8")

        def do_POST(self) -> None:
            if urlsplit(self.path).path != "/regenerate":
                self._send(404, "not found\n", "text/plain; charset=utf-8")
                return
            # A form posted by another site's page (the browser says where it comes from) is refused.
            origin = self.headers.get("origin")
            if origin is not None and origin != f"http://{self.headers.get('host')}":
                self._send(403, "cross-origin form refused\n", "text/plain; charset=utf-8")
                return
            length = int(self.headers.get("content-length") or 0)
            if length > _MAX_FORM_BYTES:
                self._send(413, "form too large\n", "text/plain; charset=utf-8")
                return
            form = parse_qs(self.rfile.read(length).decode("utf-8", "replace"))
            source, variant = form.get("source", [""])[0], form.get("variant", [""])[0]
            try:
                state.regenerate(source, variant)
            except (UserError, ReframeError) as exc:
                reason = exc.message if isinstance(exc, ReframeError) else str(exc)
                self._send(400, state.page("all", f"not regenerated: {reason}"), "text/html; charset=utf-8")
                return
            self.send_response(303)  # back to the page: a reload does not post again
            self.send_header("Location", "./")
            self.end_headers()

        def _send(self, status: int, body: str, content_type: str) -> None:
            data = body.encode()
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: object) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    threading.Thread(target=server.serve_forever, name="gallery", daemon=True).start()
    return server
