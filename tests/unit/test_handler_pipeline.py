"""One pipeline per process: the records of a cold container's first SQS batch ask for it at once, and each
pipeline has its own provider-call pool and limiter, so a second one would double MAX_PARALLEL_CALLS."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from reframe_pipeline import handler


@pytest.mark.usefixtures("handler_env")
def test_records_asking_at_once_share_one_pipeline():
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
