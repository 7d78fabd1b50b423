"""When a call waiting for a shared provider slot looks again: when a holder is expected to finish.

Each lease carries its holder's expected end (the process's typical hold so far), so a waiter sleeps until the
first of them instead of on a blind backoff that left slots idle for up to a second, then writes to the slot due
first without looking (``first_due``). A holder past its expected end is looked at again soon, then less and less
often; a lease with no expected end (nothing learned yet) falls back to the backoff. Pure: the caller brings the
clock."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from typing import NamedTuple

FIRST_S, LONGEST_S = 0.05, 1.0  # the backoff when no holder says when it ends
AFTER_END_S = 0.02  # past an expected end: its release is a write away
_WEIGHT = 0.3  # of a new hold in the typical one: a changed provider is followed within a few calls


def next_look_s(now_ms: int, expected_ends_ms: Iterable[int | None], rounds: int) -> float:
    """Seconds until the next look, after ``rounds`` looks (from 1) found every slot busy; the expected ends
    are those of the busy slots' holders (None: the holder did not say)."""
    backoff = min(LONGEST_S, FIRST_S * 2 ** (rounds - 1))
    waits = []
    for end in expected_ends_ms:
        if end is None:
            waits.append(backoff)
        elif end > now_ms:
            waits.append((end - now_ms) / 1000 + AFTER_END_S)
        else:  # late: looked at again once it has been late as long again, its release a write away at first
            waits.append(max(AFTER_END_S, (now_ms - end) / 1000))
    return min(LONGEST_S, min(waits, default=backoff))


class Due(NamedTuple):
    """The busy slot whose holder expects to finish first, and when."""

    slot: int
    end_ms: int


def first_due(now_ms: int, expected_ends_ms: Mapping[int, int | None]) -> Due | None:
    """Of the busy slots (slot: its holder's expected end, None when it did not say), the one due first; None
    when none is due later than ``now_ms`` (a holder already late is looked at, not written to, each round)."""
    due = [Due(slot, end) for slot, end in expected_ends_ms.items() if end is not None and end > now_ms]
    return min(due, key=lambda d: d.end_ms, default=None)


class TypicalHold:
    """How long this process's calls hold a slot, learned as they finish (a moving average)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seconds: float | None = None

    def observe(self, seconds: float) -> None:
        with self._lock:
            known = self._seconds
            self._seconds = seconds if known is None else known + _WEIGHT * (seconds - known)

    def expected_end_ms(self, start_ms: int) -> int | None:
        """When a hold starting at ``start_ms`` should end; None before any hold has ended."""
        with self._lock:
            return None if self._seconds is None else start_ms + round(self._seconds * 1000)
