"""The garbage collector paused while the handler loads: its imports and clients allocate hundreds of thousands
of objects that live as long as the process (AWS service models, pydantic schemas), and the collections run
meanwhile find no garbage in them. Paused, then frozen (``gc.freeze``: no later collection walks them again),
a cold start takes about 100 ms less CPU (``make bench``, figure 3)."""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager


class _Pause:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._depth = 0
        self._resume = False  # whether the collector was on when the outermost pause began

    def enter(self) -> None:
        with self._lock:
            if self._depth == 0:
                self._resume = gc.isenabled()
                gc.disable()
            self._depth += 1

    def exit(self) -> None:
        with self._lock:
            self._depth -= 1
            if self._depth == 0 and self._resume:
                gc.freeze()
                gc.enable()


_pause = _Pause()


@contextmanager
def collector_paused() -> Iterator[None]:
    """No collection inside the block (nested or from several threads: until the last one ends); then what
    it built is frozen and the collector is on again, if it was on before."""
    _pause.enter()
    try:
        yield
    finally:
        _pause.exit()
