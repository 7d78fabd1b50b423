"""Time left in this invocation: every provider call, retry and notice is measured against it."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


class Deadline:
    """Time left in this invocation; backed by the Lambda context when there is one."""

    def __init__(self, remaining_ms: Callable[[], int] | None = None, *, budget_ms: int = 900_000) -> None:
        if remaining_ms is None:
            end = time.monotonic() + budget_ms / 1000
            remaining_ms = lambda: int((end - time.monotonic()) * 1000)  # noqa: E731
        self.remaining_ms = remaining_ms

    @classmethod
    def from_context(cls, context: Any) -> Deadline:
        getter = getattr(context, "get_remaining_time_in_millis", None)
        return cls(getter) if callable(getter) else cls()
