"""One boto3 session per process for every AWS client the function builds. Each new session loads the
endpoint rules and service models again: four clients from four sessions took about 290 ms on a cold start,
from one session about 90 ms (``make bench``, figure 3)."""

from __future__ import annotations

from functools import cache
from typing import Any

import boto3


@cache
def session() -> boto3.session.Session:
    """Built from the environment of its first use; ``handler.reset()`` forgets it with the clients."""
    return boto3.session.Session()


@cache
def client(service: str) -> Any:
    """One client per service (boto3 clients are thread-safe), with the session's defaults."""
    return session().client(service)  # type: ignore[call-overload]
