"""One pipeline per process: the records of a cold container's first SQS batch ask for it at once, and each
pipeline has its own provider-call pool and limiter, so a second one would double MAX_PARALLEL_CALLS."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from reframe_pipeline import handler


def test_records_asking_at_once_share_one_pipeline(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("REFRAME_PROVIDER", "local")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    # Credentials given: without them, building the S3 client asks the instance metadata endpoint for some.
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    handler.reset()
    records = 10  # an SQS batch's most
    at_once = threading.Barrier(records)

    def first_event() -> int:
        at_once.wait()
        return id(handler.pipeline())

    try:
        with ThreadPoolExecutor(records) as pool:
            built = set(pool.map(lambda _: first_event(), range(records)))
    finally:
        handler.reset()
    assert len(built) == 1
