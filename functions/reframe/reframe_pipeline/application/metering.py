"""One variant's money and progress around its provider calls: the Meter the application hands the provider."""

from __future__ import annotations

import threading

from reframe_pipeline.application.ports import Budget, Journal
from reframe_pipeline.application.values import Refund, Ticket


class VariantMeter:
    """One variant's money and progress: each paid attempt reserved on its day, refunds for attempts
    that provably cost nothing, and the provider's ticket journaled before waiting for the result."""

    def __init__(self, budget: Budget, cost: float, journal: Journal, work_id: str) -> None:
        self._budget = budget
        self._cost = cost
        self._journal = journal
        self._work_id = work_id
        self._lock = threading.Lock()
        self.spent = 0.0
        self.paid_attempts = 0

    def charge(self) -> Refund:
        reservation = self._budget.reserve(self._cost)
        with self._lock:
            self.spent += self._cost
            self.paid_attempts += 1

        def refund() -> None:
            self._budget.refund(reservation)
            with self._lock:
                self.spent -= self._cost

        return refund

    def submitted(self, ticket: Ticket | None) -> None:
        self._journal.hold(self._work_id, ticket)
