"""Shared fixtures: local stand-in servers, one set per pytest(-xdist) worker, on free ports.

Each server fixture stops its process when the session ends, whether tests passed or not.
"""

from __future__ import annotations

import functools
import os
import shutil
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests
from PIL import Image

from reframe_local import servers
from reframe_local.servers import ServerProcess

IMAGES = Path(__file__).resolve().parents[1] / "examples" / "images"
EMULATOR_API_KEY = "test-key-123"
# The emulator's runtime options as it starts; tests that change them get them back from `fresh_emulator`.
EMULATOR_DEFAULTS = {
    "latency_ms": 0,
    "max_in_flight": None,
    "square_only": False,
    "max_source_bytes": None,
    "max_source_pixels": None,
    "response_format": "image",
    "image_format": "jpeg",
    "result_ttl_s": 60.0,
    "serve_v2": True,
}


@pytest.fixture(scope="session")
def moto_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """moto in server mode (S3, SQS, DynamoDB, ...); checks no credentials."""
    with servers.start_moto(log_path=tmp_path_factory.mktemp("moto") / "moto.log") as server:
        yield server


@pytest.fixture(scope="session")
def weed_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """SeaweedFS S3 with generated credentials (server.access_key / server.secret_key)."""
    access_key, secret_key = servers.generate_credentials()
    with servers.start_weed(tmp_path_factory.mktemp("weed"), access_key, secret_key) as server:
        yield server


@pytest.fixture(scope="session")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """The provider emulator, expecting EMULATOR_API_KEY."""
    log_path = tmp_path_factory.mktemp("emulator") / "emulator.log"
    with servers.start_emulator(EMULATOR_API_KEY, log_path=log_path) as server:
        yield server


@pytest.fixture
def fresh_emulator(emulator: ServerProcess) -> ServerProcess:
    """The session's emulator with zeroed stats, no faults and its starting options."""
    requests.post(f"{emulator.url}/_emulator/reset", timeout=10).raise_for_status()
    requests.post(f"{emulator.url}/_emulator/config", json=EMULATOR_DEFAULTS, timeout=10).raise_for_status()
    return emulator


@pytest.fixture
def moto_reset(moto_server: ServerProcess) -> ServerProcess:
    """The moto server, emptied of everything earlier tests created."""
    requests.post(f"{moto_server.url}/moto-api/reset", timeout=10).raise_for_status()
    return moto_server


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch, moto_server: ServerProcess) -> str:
    """Point the standard AWS settings at moto and return its endpoint URL."""
    # Settings from the developer's shell would win over or mix with ours.
    for name in list(os.environ):
        if name.startswith("AWS_ENDPOINT_URL_"):
            monkeypatch.delenv(name)
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server.url)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    monkeypatch.setenv("AWS_DEFAULT_REGION", servers.REGION)
    # What Lambda sets, and what code written for Lambda reads.
    monkeypatch.setenv("AWS_REGION", servers.REGION)
    return moto_server.url


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextmanager
def serving(handler: Callable[..., BaseHTTPRequestHandler]) -> Iterator[str]:
    """The base URL of a loopback HTTP server answering with ``handler``, stopped on the way out."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.fixture(scope="session")
def files(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Base URL of a loopback server holding the sample images, a text file and a GIF."""
    root = tmp_path_factory.mktemp("sources")
    for path in IMAGES.iterdir():
        shutil.copy(path, root / path.name)
    (root / "notes.txt").write_text("not an image\n")
    Image.new("RGB", (64, 64), "red").save(root / "red.gif")
    with serving(functools.partial(_QuietHandler, directory=str(root))) as url:
        yield url
