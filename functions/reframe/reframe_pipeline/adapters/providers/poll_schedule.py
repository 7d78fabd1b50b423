"""When to ask an asynchronous job whether it is done: around the time it is expected to take.

A generation takes about as long as the previous ones of the same rendering speed and resolution, so the
process learns that time (per speed and resolution; a resolution not yet seen takes its speed's latest) and
polls close together near it (a twentieth of it apart, between ``SHORTEST_STEP_S`` and ``LONGEST_STEP_S``, and
at the latest job's time as seen): a ready result waits no longer than that for its poll, and the polls per job
stay bounded (``max_polls_to``).
Before anything is learned the expectation is ``FIRST_GUESS_S`` (Segmind documents about 11 s for a reframe),
with early polls further and further apart before it (``FIRST_POLL_S``, ``EARLY_GROWTH``), in case this
account's generations are much faster. Jobs waiting together take turns in their polls (each job's are shifted
by a fraction of a step, ``phase``), and a job that finishes wakes the others (``pause``): they plan again
from what it taught, so jobs submitted together are collected together, soon after the first is seen done.
The caller brings the clock; ``pause`` waits on the real one unless a test brings its own.
"""

from __future__ import annotations

import heapq
import itertools
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass

FIRST_GUESS_S = 11.0
SHORTEST_STEP_S, LONGEST_STEP_S = 0.1, 0.25  # between polls near the expected end
LATEST_S = 2.0  # between polls long after it: a job that runs late costs one poll every 2 s
_LATE_GROWTH = 1.5  # of the wait between polls past the window, from the step up to LATEST_S
# The window polled every STEP_S: the expected end +- twice the typical deviation, within these bounds.
SMALLEST_SPREAD_S, LARGEST_SPREAD_S = 0.25, 2.0
# Before anything is learned: the first poll this long after the submission, then each this many times later
# than the one before (a result ready between two is seen at most half its time late), up to the window.
FIRST_POLL_S, EARLY_GROWTH = 0.25, 1.5
# The phases of successive jobs, spread evenly over a step whatever their number (the golden ratio's).
_PHASE_STRIDE = 0.6180339887
_WEIGHT = 0.5  # of a new observation in the learned averages: a changed service is followed within a few jobs


@dataclass(frozen=True)
class Estimate:
    expected_s: float  # the typical time from submission to a ready result
    deviation_s: float  # the typical distance of one job's time from it
    learned: bool = True
    # The latest job's time as its last poll saw it: one submitted with it is likely done that long after its own
    # submission, so that is a poll time too.
    seen_s: float | None = None


@dataclass(frozen=True)
class Plan:
    """The poll times of one job, in seconds since it was submitted."""

    estimate: Estimate
    phase: float = 0.0  # in [0, 1): polls this fraction of a step later, so jobs waiting together take turns

    @property
    def spread_s(self) -> float:
        return min(LARGEST_SPREAD_S, max(SMALLEST_SPREAD_S, 2 * self.estimate.deviation_s))

    @property
    def step_s(self) -> float:
        return min(LONGEST_STEP_S, max(SHORTEST_STEP_S, self.estimate.expected_s / 20))

    def times(self) -> Iterator[float]:
        """Every poll time, in order, without end."""
        seen = self.estimate.seen_s
        yield from self._steps() if seen is None else heapq.merge(self._steps(), [seen])

    def _steps(self) -> Iterator[float]:
        start = max(0.0, self.estimate.expected_s - self.spread_s)
        end = self.estimate.expected_s + self.spread_s
        if not self.estimate.learned:
            early = (FIRST_POLL_S * EARLY_GROWTH ** (index + self.phase) for index in itertools.count())
            yield from itertools.takewhile(lambda at: at < start, early)
        step = self.step_s
        near = (start + (index + self.phase) * step for index in itertools.count())
        at = start
        for at in itertools.takewhile(lambda t: t <= end + 1e-9, near):
            yield at
        wait = step
        while True:  # late: further and further apart, up to LATEST_S
            at += wait
            yield at
            wait = min(LATEST_S, wait * _LATE_GROWTH)

    def next_after(self, polled_s: float | None) -> float:
        """The first poll time after ``polled_s`` (the last poll's; None before the first)."""
        if polled_s is None:
            return next(self.times())
        return next(at for at in self.times() if at > polled_s)

    def max_polls_to(self, ready_s: float) -> int:
        """How many polls a job ready ``ready_s`` after its submission takes at most (the one that sees it
        done included)."""
        return sum(1 for _ in itertools.takewhile(lambda at: at < ready_s, self.times())) + 1


# Waits on a condition at most so many seconds (``threading.Condition.wait``'s signature).
Wait = Callable[[threading.Condition, float], object]


class PollSchedule:
    """The learned times of one process's jobs, per (rendering speed, resolution); thread-safe."""

    def __init__(self, first_guess_s: float = FIRST_GUESS_S, wait: Wait = threading.Condition.wait) -> None:
        self._first = Estimate(first_guess_s, first_guess_s / 10, learned=False)
        self._learned: dict[tuple[str, str], Estimate] = {}
        self._by_speed: dict[str, Estimate] = {}
        self._lock = threading.RLock()  # re-entered only by a test's wait, which learns while "waiting"
        self._news = threading.Condition(self._lock)
        self._lessons = 0  # jobs learned from so far: a waiting job plans again when it changes
        self._jobs = 0  # given a phase
        self._wait = wait

    def phase(self) -> float:
        """A new job's phase for its early polls: successive jobs' are spread over a growth step."""
        with self._lock:
            self._jobs += 1
            return ((self._jobs - 1) * _PHASE_STRIDE) % 1.0

    def plan(self, speed: str, resolution: str, phase: float = 0.0) -> tuple[Plan, int]:
        """The plan of a job of this speed and resolution, with the lessons it knows of (for ``pause``)."""
        with self._lock:
            estimate = self._learned.get((speed, resolution)) or self._by_speed.get(speed) or self._first
            return Plan(estimate, phase), self._lessons

    def pause(self, lessons: int, seconds: float) -> None:
        """Wait ``seconds``, or less when a job is learned from meanwhile (or was, since ``lessons``): the
        caller plans again, and a result its siblings have shown done is asked for at once."""
        with self._news:
            if self._lessons == lessons:
                self._wait(self._news, seconds)

    def learn(self, speed: str, resolution: str, not_ready_s: float | None, ready_s: float) -> None:
        """A job of this speed and resolution was not ready at ``not_ready_s`` (its previous poll; None: none
        made) and ready at ``ready_s``, in seconds since submission."""
        with self._lock:
            known = self._learned.get((speed, resolution)) or self._by_speed.get(speed) or self._first
            plan = Plan(known)
            if not_ready_s is None:
                # Done at its first poll: it took at most ready_s, maybe much less (a job resumed long after). Only
                # a faster service is learned from it, and not for sure: the next job probes early again
                # (FIRST_POLL_S on), so how much faster is found within a job or two.
                expected = min(known.expected_s, max(0.0, ready_s - plan.step_s))
                estimate = Estimate(expected, known.deviation_s, learned=False)
            else:
                seen = (not_ready_s + ready_s) / 2
                if not known.learned or abs(seen - known.expected_s) > 2 * plan.spread_s:
                    estimate = Estimate(seen, (ready_s - not_ready_s) / 2, seen_s=ready_s)  # a new regime
                else:
                    estimate = Estimate(
                        known.expected_s + _WEIGHT * (seen - known.expected_s),
                        known.deviation_s + _WEIGHT * (abs(seen - known.expected_s) - known.deviation_s),
                        seen_s=ready_s,
                    )
            self._learned[(speed, resolution)] = self._by_speed[speed] = estimate
            self._lessons += 1
            self._news.notify_all()
