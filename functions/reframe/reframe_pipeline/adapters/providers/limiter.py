"""Client-side adaptive concurrency for provider calls, shared by every thread of the process (composition
builds one, of MAX_PARALLEL_CALLS, with the provider).

Providers cap the calls in flight per account and answer 429 beyond; backing off per call still leaves
every thread hammering the cap. The limiter is AIMD: a 429 halves the number of calls let through (not
below 1), each success raises it additively, up to MAX_PARALLEL_CALLS. Halving from just above the cap
would idle half the capacity while the limit crawls back, so after a halving the limit returns at +1 per
success to the last level that did not draw a 429, and probes above that level slowly (+PROBE_STEP per
round of calls): throttles stay rare and the provider's cap stays full.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass

# How fast the limit climbs above the last good level: this much per round (``limit`` successes).
PROBE_STEP = 0.25


@dataclass(frozen=True)
class Slot:
    """One call let through; ``epoch`` says which limit it was admitted under."""

    epoch: int


class AimdLimiter:
    def __init__(self, maximum: int = 8) -> None:
        self._cond = threading.Condition()
        self._maximum = float(maximum)
        self._limit = float(maximum)
        self._good = float(maximum)  # the highest limit not known to draw a 429
        self._in_flight = 0
        self._epoch = 0  # bumped by each decrease

    @property
    def limit(self) -> int:
        """Calls let through at once right now."""
        with self._cond:
            return self._slots()

    @property
    def in_flight(self) -> int:
        with self._cond:
            return self._in_flight

    def _slots(self) -> int:
        return max(1, math.floor(self._limit))

    def acquire(self, timeout_s: float | None = None) -> Slot | None:
        """Wait for a free slot; None if none freed up within ``timeout_s``."""
        end = None if timeout_s is None else time.monotonic() + timeout_s
        with self._cond:
            while self._in_flight >= self._slots():
                remaining = None if end is None else end - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return None
                self._cond.wait(remaining)
            self._in_flight += 1
            return Slot(self._epoch)

    def release(self, slot: Slot, *, throttled: bool = False, succeeded: bool = False) -> int | None:
        """Give the slot back with what the call met; returns the new limit when a 429 lowered it."""
        with self._cond:
            self._in_flight -= 1
            lowered = None
            # One decrease per overload: calls admitted under an older limit tell nothing new.
            if throttled and slot.epoch == self._epoch:
                self._good = max(1.0, self._limit - 1)
                self._limit = max(1.0, self._limit / 2)
                self._epoch += 1
                lowered = self._slots()
            elif succeeded:
                if self._limit < self._good:
                    self._limit = min(self._good, self._limit + 1)
                else:
                    self._limit = min(self._maximum, self._limit + PROBE_STEP / self._limit)
            self._cond.notify_all()
            return lowered
