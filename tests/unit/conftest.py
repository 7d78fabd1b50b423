"""Fixtures of the unit tests: each test starts with the process's provider call limiter as new; the image
tests run with a bound on their memory; ``counted`` records the metrics a variant counts; and no unit test
opens a socket or starts a process (those belong in tests/integration)."""

from __future__ import annotations

import re
import resource
import socket
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import NoReturn

import pytest

from reframe_pipeline.adapters.providers.limiter import LIMITER, AimdLimiter
from reframe_pipeline.application import variants as variants_module


@pytest.fixture(autouse=True)
def fresh_limiter() -> Iterator[AimdLimiter]:
    """The limiter every provider call goes through is one per process: a slot one test leaks must not
    narrow, or hide in, the next test. Each test gets it as a new process would, and hands it back."""
    vars(LIMITER).update(vars(AimdLimiter()))
    yield LIMITER
    vars(LIMITER).update(vars(AimdLimiter()))


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
    monkeypatch.setattr(variants_module, "count", lambda name, value=1: names.append(name))
    return names


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
