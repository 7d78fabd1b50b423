"""The calls of one process waiting for a shared provider slot, in the order they came.

Only the first looks at the table (one read per round for the whole process, not one per waiting call); a call
of this process that finishes hands its slot straight to the next waiting one (the slot is never idle; see
``SharedSlots._hand_over``), at most ``HANDOVERS_IN_A_ROW`` times in a row, so that other instances get their
turn."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

HANDOVERS_IN_A_ROW = 3


@dataclass(eq=False)
class Waiter:
    holder: str  # the lease's owner, once it has one
    expires_ms: Callable[[], int]  # when a lease taken now would expire
    invocation: object  # its invocation's deadline: calls of one invocation have the same lease expiry
    slot: int | None = None  # set when a finishing call handed it over
    looking: bool = False  # reading or writing the table: no handover to it meanwhile
    claimed: bool = False  # a handover to it is being written: it may not give up meanwhile
    woken: threading.Event = field(default_factory=threading.Event)


class SlotQueue:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._waiting: deque[Waiter] = deque()
        self._handed: dict[int, int] = {}  # slot -> handovers in a row

    def join(self, holder: str, expires_ms: Callable[[], int], invocation: object) -> Waiter:
        waiter = Waiter(holder, expires_ms, invocation)
        with self._lock:
            self._waiting.append(waiter)
        return waiter

    def start_looking(self, waiter: Waiter) -> bool:
        """Whether ``waiter`` should look at the table now: it is first, and no slot was handed to it."""
        with self._lock:
            waiter.woken.clear()
            waiter.looking = waiter.slot is None and bool(self._waiting) and self._waiting[0] is waiter
            return waiter.looking

    def stop_looking(self, waiter: Waiter) -> None:
        with self._lock:
            waiter.looking = False

    def took(self, waiter: Waiter, slot: int) -> None:
        """``waiter`` took ``slot`` from the table: the next one looks at once."""
        with self._lock:
            self._handed[slot] = 0
            self._leave(waiter)

    def give_up(self, waiter: Waiter) -> bool:
        """Leave the queue without a slot; False when one is or is being handed to ``waiter``."""
        with self._lock:
            if waiter.claimed or waiter.slot is not None:
                return False
            self._leave(waiter)
            return True

    def _leave(self, waiter: Waiter) -> None:
        if waiter in self._waiting:
            self._waiting.remove(waiter)
        if self._waiting:
            self._waiting[0].woken.set()

    def heir(self, slot: int) -> Waiter | None:
        """The waiter to hand ``slot`` to, taken out of the queue; None: release it to everyone."""
        with self._lock:
            if self._handed.get(slot, 0) >= HANDOVERS_IN_A_ROW:
                return None
            heir = next((waiter for waiter in self._waiting if not waiter.looking), None)
            if heir is not None:
                self._waiting.remove(heir)
                heir.claimed = True
            return heir

    def handed(self, heir: Waiter, slot: int | None) -> None:
        """The handover of ``slot`` to ``heir`` was made (the slot is its), or failed (None: it waits again,
        first in line)."""
        with self._lock:
            heir.claimed = False
            if slot is None:
                self._waiting.appendleft(heir)
            else:
                heir.slot = slot
                self._handed[slot] = self._handed.get(slot, 0) + 1
            if self._waiting:
                self._waiting[0].woken.set()
        heir.woken.set()
