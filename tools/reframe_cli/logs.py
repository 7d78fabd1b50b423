"""Where the handler's JSON logs and EMF metrics go when it runs outside Lambda."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TextIO


@contextlib.contextmanager
def handler_output_to(stream: TextIO) -> Iterator[None]:
    """Send the Powertools log lines and the EMF metric blobs (printed to stdout) to ``stream``."""
    from reframe_pipeline.observability import logger

    handler = logger.registered_handler
    previous = handler.setStream(stream)  # type: ignore[attr-defined]
    try:
        with contextlib.redirect_stdout(stream):
            yield
    finally:
        handler.setStream(previous)  # type: ignore[attr-defined]
