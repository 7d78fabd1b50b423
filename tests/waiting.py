"""One way for tests to wait for something another thread, process or server does: poll, and fail with what
was awaited, instead of a sleep that is too short on a loaded machine and too long everywhere else."""

from __future__ import annotations

import time
from collections.abc import Callable

POLL_S = 0.05


def wait_until[T](predicate: Callable[[], T], timeout: float, what: str) -> T:
    """The first true value ``predicate`` returns within ``timeout`` seconds; else AssertionError naming ``what``."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(POLL_S)
