"""Fixtures of the unit tests: the image tests run with a bound on their memory; ``counted`` records the
metrics a variant counts; ``make`` builds orchestration harnesses and lets their thread pools go; and no unit
test opens a socket or starts a process (those belong in tests/integration)."""

from __future__ import annotations

import re
import resource
import socket
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NoReturn

import pytest

from reframe_pipeline.application import fallback, generation_checks, variant_records, variants
from tests.unit.orchestration_harness import Harness


@pytest.fixture
def bounded_memory() -> Iterator[None]:
    """These small images take little memory: a wrong size computation (an upscale where a downscale was
    meant) fails with MemoryError at once instead of filling the machine's memory."""
    soft, hard = resource.getrlimit(resource.RLIMIT_DATA)
    status = re.search(r"VmData:\s+(\d+) kB", Path("/proc/self/status").read_text())
    if status is None:  # not Linux: no bound
        yield
        return
    resource.setrlimit(resource.RLIMIT_DATA, (int(status.group(1)) * 1024 + 1024**3, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_DATA, (soft, hard))


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The metric names the variant producer counts, in order."""
    names: list[str] = []
    for module in (variants, variant_records, fallback, generation_checks):
        monkeypatch.setattr(module, "count", lambda name, value=1: names.append(name))
    return names


@pytest.fixture
def make() -> Iterator[Any]:
    made: list[Harness] = []

    def build(**options: Any) -> Harness:
        harness = Harness(**options)
        made.append(harness)
        return harness

    yield build
    for harness in made:
        harness.close()


@pytest.fixture(autouse=True)
def no_socket_or_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """Unit tests run with no process, server or socket: fast, alone, on any machine. One that tries fails
    at once, saying where it belongs."""

    def refuse(what: str) -> Callable[..., NoReturn]:
        def refused(*args: object, **kwargs: object) -> NoReturn:
            raise RuntimeError(f"a unit test may not {what}: move this test to tests/integration")

        return refused

    for name in ("connect", "connect_ex", "bind"):
        monkeypatch.setattr(socket.socket, name, refuse(f"open a socket ({name})"))
    monkeypatch.setattr(subprocess.Popen, "__init__", refuse("start a process"))


@pytest.fixture
def handler_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """An environment the handler's pipeline builds from here: the local provider, a region, and credentials
    (without them, building the S3 client asks the instance metadata endpoint for some)."""
    monkeypatch.setenv("REFRAME_PROVIDER", "local")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
