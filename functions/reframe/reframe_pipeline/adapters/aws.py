"""One boto3 session per process for every AWS client the function builds. Each new session loads the
endpoint rules and service models again: four clients from four sessions took about 290 ms on a cold start,
from one session about 90 ms (``make bench``, figure 3)."""

from __future__ import annotations

import threading
from functools import cache
from typing import Any

import boto3
from botocore.config import Config

# A session is not thread-safe while it builds a client (the clients it built are): local pollers run several
# invocations in one process, and their first ones may build clients at the same moment.
_building = threading.Lock()


@cache
def session() -> boto3.session.Session:
    """Built from the environment of its first use; ``handler.reset()`` forgets it with the clients."""
    return boto3.session.Session()


def new_client(service: str, config: Config | None = None) -> Any:
    with _building:
        return session().client(service, config=config)  # type: ignore[call-overload]


@cache
def client(service: str) -> Any:
    """One client per service, with the session's defaults."""
    return new_client(service)
