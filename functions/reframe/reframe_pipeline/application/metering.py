"""One variant's money and progress around its provider calls: the Meter the application hands the provider."""

from __future__ import annotations

import threading
from dataclasses import replace

from reframe_pipeline.application.ports import Budget, Journal, Meter
from reframe_pipeline.application.values import Refund, Ticket


def retry_work_id(work_id: str) -> str:
    """The journal entry of a generation's second try (SOURCE_CHECK=retry): its ticket never replaces the first's,
    so a redelivery collects each of them as what it is."""
    return f"{work_id}:retry"


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
        # Paid for by an earlier invocation: generations collected with their tickets, or held by this process.
        self.earlier_usd = 0.0

    @property
    def cost_usd(self) -> float:
        """What the variant's generations cost: paid in this run, or earlier and collected in it."""
        return self.spent + self.earlier_usd

    def collected(self) -> None:
        """A generation paid for earlier was collected with its ticket."""
        self.earlier_usd += self._cost

    def reused(self, cost_usd: float) -> None:
        """Generations paid for earlier (``cost_usd``) and held by this process were used."""
        self.earlier_usd += cost_usd

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

    def retry(self, seed: int) -> Meter:
        """The meter of the generation's second try: this variant's money, its own journal entry, and its seed
        kept with its ticket (a redelivery asks for that seed again, or collects the ticket)."""
        return _RetryMeter(self, seed)

    def journal_retry(self, ticket: Ticket | None, seed: int) -> None:
        held = replace(ticket, seed=seed) if ticket is not None and ticket.seed is None else ticket
        self._journal.hold(retry_work_id(self._work_id), held)


class _RetryMeter:
    def __init__(self, meter: VariantMeter, seed: int) -> None:
        self._meter = meter
        self._seed = seed

    def charge(self) -> Refund:
        return self._meter.charge()

    def submitted(self, ticket: Ticket | None) -> None:
        self._meter.journal_retry(ticket, self._seed)
