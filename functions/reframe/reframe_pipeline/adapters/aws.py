"""One boto3 session per process for every AWS client the function builds. Each new session loads the
endpoint rules and service models again: four clients from four sessions took about 290 ms on a cold start,
from one session about 90 ms (``make bench``, figure 3).

Every client has short timeouts and few retries (botocore's defaults, 60 s reads and up to 10 DynamoDB attempts,
let one unanswered request outlive the invocation), and a call made ``within`` a deadline starts no attempt that
could not end before it."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from functools import cache
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError

from reframe_pipeline.adapters.aws_limits import ATTEMPT_MS, ATTEMPTS, CONNECT_TIMEOUT_S, READ_TIMEOUT_S
from reframe_pipeline.application.deadline import Deadline

BOUNDED = Config(
    connect_timeout=CONNECT_TIMEOUT_S,
    read_timeout=READ_TIMEOUT_S,
    retries={"mode": "standard", "total_max_attempts": ATTEMPTS},
)


# A session is not thread-safe while it builds a client (the clients it built are): local pollers run several
# invocations in one process, and their first ones may build clients at the same moment.
_building = threading.Lock()
# Threads the pipeline starts copy their context, so a deadline set for a piece of work reaches its calls.
_deadline: ContextVar[Deadline | None] = ContextVar("aws_deadline", default=None)


class OutOfTime(BotoCoreError):
    fmt = "no time left for {operation}: an attempt may take {attempt_ms} ms, {remaining_ms} ms remain"


@contextmanager
def within(deadline: Deadline) -> Iterator[None]:
    """AWS calls made in this block (and in threads started from it) start no attempt past ``deadline``."""
    token = _deadline.set(deadline)
    try:
        yield
    finally:
        _deadline.reset(token)


def _check_time(request: Any, event_name: str, **kwargs: Any) -> None:
    """Before each attempt, retries included (botocore's ``before-send``): raised, it ends the call at once."""
    deadline = _deadline.get()
    if deadline is None:
        return
    remaining = deadline.remaining_ms()
    if remaining < ATTEMPT_MS:
        raise OutOfTime(operation=event_name.rsplit(".", 1)[-1], attempt_ms=ATTEMPT_MS, remaining_ms=remaining)


@cache
def session() -> boto3.session.Session:
    """Built from the environment of its first use; ``handler.reset()`` forgets it with the clients."""
    return boto3.session.Session()


def new_client(service: str, config: Config | None = None) -> Any:
    """A client with the bounded timeouts and retries; ``config`` adds to or overrides them."""
    with _building:
        client = session().client(service, config=BOUNDED.merge(config) if config else BOUNDED)  # type: ignore[call-overload]
    client.meta.events.register("before-send", _check_time)
    return client


@cache
def client(service: str) -> Any:
    """One client per service, with the session's defaults."""
    return new_client(service)
