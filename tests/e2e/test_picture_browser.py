"""A manifest's srcsets in a real browser: the handler (over moto's server and the emulator) writes a target in
AVIF, WebP and JPEG at two widths to a second bucket; a stand-in for the CDN on 127.0.0.1 (PUBLIC_BASE_URL)
serves that bucket's objects with their stored Content-Type and Cache-Control; a
``<picture>`` built from the manifest's ``srcset`` fields, as docs/outputs.md shows it, is loaded by headless
Chromium, which picks the first type it decodes (AVIF) and the width the layout needs; without the AVIF source,
WebP."""

from __future__ import annotations

import html
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

import pytest

from reframe_local import servers
from reframe_local.lambda_context import LocalContext
from reframe_local.servers import ServerProcess
from reframe_pipeline import handler

from ..conftest import EMULATOR_API_KEY
from .browser import NEEDS_BROWSER, new_page

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = NEEDS_BROWSER

BUCKET, OUTPUT = "photos", "cdn-assets"
SOURCE = "uploads/shoot/rocket.jpg"
MIME = {"avif": "image/avif", "webp": "image/webp", "jpeg": "image/jpeg"}


def cdn(s3: Any) -> ThreadingHTTPServer:
    """What CloudFront does in front of the output bucket: a GET of the path is a signed GET of the key."""

    class Origin(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            try:
                stored = s3.get_object(Bucket=OUTPUT, Key=unquote(self.path.lstrip("/")))
            except s3.exceptions.NoSuchKey:
                self.send_error(404)
                return
            body = stored["Body"].read()
            self.send_response(200)
            for header, field in (("Content-Type", "ContentType"), ("Cache-Control", "CacheControl")):
                self.send_header(header, stored[field])
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Origin)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture
def manifest(
    aws_env: str, moto_reset: ServerProcess, fresh_emulator: ServerProcess, monkeypatch: pytest.MonkeyPatch
) -> Iterator[dict[str, Any]]:
    """The manifest entry of one target, its deliverables served under PUBLIC_BASE_URL."""
    s3 = servers.client("s3", aws_env)
    for bucket in (BUCKET, OUTPUT):
        s3.create_bucket(Bucket=bucket)
    origin = cdn(s3)
    settings = {
        "REFRAME_PROVIDER": "segmind",
        "SEGMIND_API_URL": f"{fresh_emulator.url}/v1/ideogram-3-reframe",
        "SEGMIND_API_KEY": EMULATOR_API_KEY,
        "SOURCE_CHECK": "off",
        "OUTPUT_BUCKET": OUTPUT,
        "OUTPUT_KEY_TEMPLATE": "img/{dir}/{stem}/{name}-{width}w.{hash}.{ext}",
        "PUBLIC_BASE_URL": f"http://127.0.0.1:{origin.server_address[1]}",
    }
    for name, value in settings.items():
        monkeypatch.setenv(name, value)
    handler.reset()
    from reframe_cli.samples import IMAGES

    s3.put_object(Bucket=BUCKET, Key=SOURCE, Body=(IMAGES / "rocket.jpg").read_bytes())
    sidecar = {
        "version": 1,
        "targets": [{"size": "1200x628", "name": "og", "widths": [600]}],
        "output": {"formats": ["avif", "webp", "jpeg"], "quality": 70},
    }
    s3.put_object(Bucket=BUCKET, Key=SOURCE + ".reframe.json", Body=json.dumps(sidecar).encode())
    event = {
        "detail-type": "Object Created",
        "source": "aws.s3",
        "detail": {"bucket": {"name": BUCKET}, "object": {"key": SOURCE}},
    }
    handler.lambda_handler(event, LocalContext(timeout_s=120))
    body = s3.get_object(Bucket=BUCKET, Key="reframed/shoot/rocket.jpg/manifest.json")["Body"].read()
    (og,) = json.loads(body)["variants"]
    yield og
    handler.reset()
    origin.shutdown()
    origin.server_close()


@pytest.fixture
def page() -> Iterator[Page]:
    with new_page(viewport={"width": 600, "height": 800}) as opened:
        yield opened


def picture(og: dict[str, Any], formats: list[str]) -> str:
    """The snippet of docs/outputs.md, from the manifest's fields: one <source> per format, the JPEG as <img>."""
    sizes = "(max-width: 600px) 100vw, 1200px"
    sources = "".join(
        f'<source type="{MIME[fmt]}" srcset="{html.escape(og["srcset"][fmt])}" sizes="{sizes}">' for fmt in formats
    )
    fallback = next(r for r in og["renditions"] if r["format"] == "jpeg")
    return (
        f'<picture>{sources}<img id="og" src="{html.escape(fallback["url"])}" srcset="{html.escape(og["srcset"]["jpeg"])}"'
        f' sizes="{sizes}" width="{og["width"]}" height="{og["height"]}" alt="og"></picture>'
    )


def shown(page: Page, snippet: str) -> tuple[str, int]:
    page.set_content(f"<!doctype html><body style='margin:0'>{snippet}</body>")
    page.wait_for_function("document.getElementById('og').complete && document.getElementById('og').naturalWidth > 0")
    src, width = page.evaluate("[document.getElementById('og').currentSrc, document.getElementById('og').naturalWidth]")
    return str(src), int(width)


def test_chromium_picks_avif_at_the_width_the_layout_needs(manifest: dict[str, Any], page: Page) -> None:
    src, width = shown(page, picture(manifest, ["avif", "webp"]))
    small = next(r for r in manifest["renditions"] if r["format"] == "avif" and r["width"] == 600)
    assert src == small["url"] and width == 600  # a 600-pixel-wide viewport: the 600w AVIF, decoded


def test_without_avif_it_takes_webp(manifest: dict[str, Any], page: Page) -> None:
    src, width = shown(page, picture(manifest, ["webp"]))
    assert src.endswith(".webp") and src in manifest["srcset"]["webp"] and width == 600
