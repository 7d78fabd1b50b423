"""Polling Segmind's async jobs around the learned generation time (adapters/providers/poll_schedule.py and the
provider's use of it), driven by a fake clock: nothing sleeps."""

from __future__ import annotations

import itertools
import json
import random
import statistics
import threading
import time
from typing import Any

import pytest
import requests

from reframe_pipeline.adapters.providers.limiter import AimdLimiter
from reframe_pipeline.adapters.providers.poll_schedule import (
    EARLY_GROWTH,
    FIRST_GUESS_S,
    FIRST_POLL_S,
    LATEST_S,
    SHORTEST_STEP_S,
    Plan,
    PollSchedule,
)
from reframe_pipeline.adapters.providers.responses import ResultLostError, ResultPendingError
from reframe_pipeline.adapters.providers.retrying import RetryPolicy
from reframe_pipeline.adapters.providers.segmind import RESULT_TTL_S, SegmindProvider
from reframe_pipeline.application.deadline import Deadline
from reframe_pipeline.application.source_image import SourceImage
from reframe_pipeline.application.values import GenerationParams, ReframeRequest, Ticket
from reframe_pipeline.domain.resolutions import Size


def collect(plan: Plan, ready_s: float) -> tuple[float | None, float, int]:
    """A job ready ``ready_s`` after submission polled on ``plan``: (previous poll, the poll that saw it, polls)."""
    previous: float | None = None
    for polls, at in enumerate(plan.times(), start=1):
        if at >= ready_s:
            return previous, at, polls
        previous = at


def run_jobs(schedule: PollSchedule, times: list[float], speed: str = "DEFAULT") -> tuple[list[float], list[int]]:
    """Each job in turn on the schedule it has learned so far: (delays after ready, polls per job)."""
    delays, polls = [], []
    for ready in times:
        previous, seen, count = collect(schedule.plan(speed, "1536x640")[0], ready)
        schedule.learn(speed, "1536x640", previous, seen)
        delays.append(seen - ready)
        polls.append(count)
    return delays, polls


def test_before_anything_is_learned_polls_come_early_then_close_together_around_the_documented_time():
    times = list(itertools.islice(PollSchedule().plan("DEFAULT", "1536x640")[0].times(), 40))
    early = [t for t in times if t < FIRST_GUESS_S - 2.5]
    assert early[0] == FIRST_POLL_S
    assert [b / a for a, b in itertools.pairwise(early)] == pytest.approx([EARLY_GROWTH] * (len(early) - 1))
    assert len(early) <= 10  # what a first job of about 11 s costs before the window, as Segmind documents it
    near = [t for t in times if FIRST_GUESS_S - 2 <= t < FIRST_GUESS_S + 2.5]
    assert min(near) <= FIRST_GUESS_S - 1 and max(near) >= FIRST_GUESS_S + 1
    assert max(b - a for a, b in itertools.pairwise(near)) <= 0.25 + 1e-9
    assert times == sorted(times)
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert gaps[-1] == pytest.approx(LATEST_S)  # late: one poll every 2 s, no more


def test_a_steady_service_is_learned_and_each_result_collected_soon_after_it_is_ready_with_few_polls():
    rng = random.Random(3)
    schedule = PollSchedule()
    delays, polls = run_jobs(schedule, [3.0 + rng.uniform(-0.1, 0.1) for _ in range(40)])
    steady_delays, steady_polls = delays[5:], polls[5:]
    assert statistics.median(steady_delays) <= 0.25
    assert max(steady_delays) <= 0.5
    assert max(steady_polls) <= 8
    # The first job, on the documented 11 s guess, is seen by an early poll, at most half its time late.
    assert delays[0] <= 3.1 * (EARLY_GROWTH - 1)


def test_the_polls_of_a_job_are_bounded_even_when_it_runs_far_late():
    schedule = PollSchedule()
    run_jobs(schedule, [2.0] * 10)
    plan, _ = schedule.plan("DEFAULT", "1536x640")
    # 60 s late: one poll every LATEST_S after the window, so about 30 more, never one per step.
    assert plan.max_polls_to(62.0) <= 10 + 60 / LATEST_S + 5
    _, _, polls = collect(plan, 62.0)
    assert polls == plan.max_polls_to(62.0)


def test_a_changed_service_is_followed_within_a_few_jobs():
    schedule = PollSchedule()
    run_jobs(schedule, [1.0] * 10)
    delays, _ = run_jobs(schedule, [6.0] * 10)
    assert max(delays[3:]) <= 0.3
    delays, _ = run_jobs(schedule, [2.0] * 10)  # and faster again
    assert max(delays[3:]) <= 0.3


def test_what_is_learned_is_per_speed_and_a_new_resolution_starts_from_its_speeds_time():
    schedule = PollSchedule()
    run_jobs(schedule, [4.0] * 6, speed="TURBO")
    learned, _ = schedule.plan("TURBO", "1024x1024")  # never seen: TURBO's latest
    assert abs(learned.estimate.expected_s - 4.0) < 0.3
    assert schedule.plan("QUALITY", "1024x1024")[0].estimate.expected_s == FIRST_GUESS_S
    assert collect(learned, 4.0)[1] - 4.0 <= 0.25


def test_next_after_gives_the_first_poll_then_each_following_one():
    plan, _ = PollSchedule().plan("DEFAULT", "1536x640")
    first = plan.next_after(None)
    assert first == pytest.approx(FIRST_POLL_S)
    assert plan.next_after(first) > first
    assert plan.next_after(100.0) > 100.0


def test_jobs_waiting_together_take_turns_in_the_early_polls():
    schedule = PollSchedule()
    phases = [schedule.phase() for _ in range(8)]
    assert phases[0] == 0.0 and len(set(phases)) == 8 and all(0 <= phase < 1 for phase in phases)
    plans = [schedule.plan("DEFAULT", "1536x640", phase)[0] for phase in phases]
    union = sorted(at for plan in plans for at in itertools.takewhile(lambda at: at < 8.0, plan.times()))
    # Alone, a job's early polls are 1.5 times apart; 8 taking turns, the gaps are about an eighth of that.
    assert max(b / a for a, b in itertools.pairwise(union)) <= EARLY_GROWTH**0.25
    # ... and no job polls more often than alone.
    alone = collect(PollSchedule().plan("DEFAULT", "1536x640")[0], 7.0)[2]
    assert all(collect(plan, 7.0)[2] <= alone + 1 for plan in plans)


def test_jobs_waiting_together_take_turns_near_the_learned_time_too():
    schedule = PollSchedule()
    run_jobs(schedule, [3.0] * 6)
    phases = [schedule.phase() for _ in range(8)]
    plans = [schedule.plan("DEFAULT", "1536x640", phase)[0] for phase in phases]
    step = plans[0].step_s
    union = sorted(at for plan in plans for at in itertools.takewhile(lambda at: at < 3.5, plan.times()))
    near = [at for at in union if 2.7 <= at <= 3.3]
    assert max(b - a for a, b in itertools.pairwise(near)) <= step / 4


def test_the_latest_jobs_time_as_seen_is_a_poll_time_of_the_next():
    schedule = PollSchedule()
    run_jobs(schedule, [3.0] * 6)
    schedule.learn("DEFAULT", "1536x640", 2.93, 3.04)
    plan, _ = schedule.plan("DEFAULT", "1536x640", 0.5)
    assert 3.04 in list(itertools.takewhile(lambda at: at <= 3.04, plan.times()))
    # A job submitted with the one seen done at 3.04 s, woken then after a poll at 2.95 s, asks at once.
    assert plan.next_after(2.95) <= 3.04


def test_a_first_job_collected_long_after_it_was_done_does_not_teach_its_time():
    # A fresh process's first job, resumed by a later receive, is seen done at its first poll, 60 s after it was
    # submitted: it took at most that. The next job, of 3 s, is still found by the early polls.
    schedule = PollSchedule()
    schedule.learn("DEFAULT", "1536x640", None, 60.0)
    plan, _ = schedule.plan("DEFAULT", "1536x640")
    assert plan.next_after(None) == pytest.approx(FIRST_POLL_S)
    _, seen, _ = collect(plan, 3.0)
    assert seen <= 3.0 * EARLY_GROWTH
    # ... and one seen done at its first poll sooner than expected makes the next one probe from that sooner time.
    schedule.learn("DEFAULT", "1536x640", None, FIRST_POLL_S)
    plan, _ = schedule.plan("DEFAULT", "1536x640")
    assert collect(plan, 0.3)[1] <= 0.3 + SHORTEST_STEP_S


def test_a_job_learned_from_wakes_the_jobs_waiting_on_the_schedule():
    schedule = PollSchedule()
    _, lessons = schedule.plan("DEFAULT", "1536x640")
    woken = threading.Event()

    def waiting() -> None:
        schedule.pause(lessons, 60.0)
        woken.set()

    waiter = threading.Thread(target=waiting)
    waiter.start()
    schedule.learn("DEFAULT", "1536x640", 2.5, 3.0)
    waiter.join(timeout=30)
    assert woken.is_set()  # long before its 60 s
    started = time.monotonic()
    schedule.pause(lessons, 60.0)  # a lesson it has not seen yet: no wait at all
    assert time.monotonic() - started < 30


# The provider's loop, against a fake clock and a fake Segmind whose job is ready READY_S after submission.
READY_S = 3.0
SUBMITTED = 1_000_000.0


class FakeSegmind:
    """Its clock moves only when a job waits (``wait``, the schedule's) or asks (``get``); ``lessons`` are other
    jobs' results, taught to the schedule when the clock passes their time."""

    def __init__(self, status_after_ready: str = "COMPLETED") -> None:
        self.now = SUBMITTED
        self.polls: list[float] = []
        self.status_after_ready = status_after_ready
        self.lessons: list[tuple[float, PollSchedule, tuple[str, str, float, float]]] = []

    def new_job(self) -> None:
        self.now, self.polls = SUBMITTED, []

    def wait(self, _condition: object, seconds: float) -> None:
        assert seconds > 0
        due = [lesson for lesson in self.lessons if lesson[0] <= self.now - SUBMITTED + seconds]
        if not due:
            self.now += seconds
            return
        at, schedule, learned = due[0]
        self.lessons.remove(due[0])
        self.now = SUBMITTED + at
        schedule.learn(*learned)  # wakes the waiting job, as another thread's learn would

    def get(self, url: str, **_: Any) -> requests.Response:
        self.now += 0.01  # each request takes a little time
        response = requests.Response()
        response.status_code = 200
        if url.endswith("/status"):
            self.polls.append(self.now - SUBMITTED)
            done = self.now - SUBMITTED >= READY_S
            status = self.status_after_ready if done else "PROCESSING"
            if status == "FAILED":
                response.status_code = 422
            response._content = json.dumps({"status": status}).encode()
            response.headers["Content-Type"] = "application/json"
        else:
            response._content = b"\x89PNG\r\n\x1a\n" + b"\0" * 64
            response.headers["Content-Type"] = "image/png"
        return response


def provider(fake: FakeSegmind, schedule: PollSchedule) -> SegmindProvider:
    return SegmindProvider(
        mode="async",
        url="https://api.segmind.example/v1/ideogram-3-reframe",
        api_key=lambda: "k",
        session=fake,  # type: ignore[arg-type]
        policy=RetryPolicy(max_attempts=1),
        min_remaining_ms=0,
        reserve_ms=0,
        schedule=schedule,
        limiter=AimdLimiter(),
        clock=lambda: fake.now,
    )


def ticket() -> Ticket:
    base = "https://api.segmind.example/v2/requests/r1"
    return Ticket("segmind", base, SUBMITTED + RESULT_TTL_S, status_url=base + "/status")


def request(remaining_ms: int = 600_000) -> ReframeRequest:
    source = SourceImage("https://s.example/p.png", lambda: b"")
    return ReframeRequest(source, Size(1536, 640), GenerationParams(), Deadline(lambda: remaining_ms))


def wait(fake: FakeSegmind, schedule: PollSchedule, remaining_ms: int = 600_000) -> None:
    segmind = provider(fake, schedule)
    segmind._wait_for(ticket().status_url or "", ticket(), request(remaining_ms), "k")


def test_the_provider_polls_on_the_learned_schedule_and_collects_soon_after_ready():
    fake = FakeSegmind()
    schedule = PollSchedule(wait=fake.wait)
    for _ in range(6):
        wait(fake, schedule)
        fake.new_job()
    wait(fake, schedule)
    assert fake.polls[-1] - READY_S <= 0.25  # the poll that saw it done
    assert len(fake.polls) <= 6
    assert all(at < READY_S for at in fake.polls[:-1])


def test_the_first_job_of_a_process_is_seen_by_an_early_poll():
    fake = FakeSegmind()
    wait(fake, PollSchedule(wait=fake.wait))
    # Polled from 0.25 s on, each poll 1.5 times later than the one before: a 3 s job alone is seen at 4.3 s, at
    # most half its time late, not at 5.5 s (an eighth, a quarter, then half of the 11 s guess, once) nor after 11 s.
    assert fake.polls == pytest.approx([FIRST_POLL_S * EARLY_GROWTH**index + 0.01 for index in range(8)])
    assert fake.polls[-1] < READY_S * EARLY_GROWTH


def test_a_resumed_job_is_polled_at_once():
    fake = FakeSegmind()
    fake.now = SUBMITTED + 600  # collected by a later invocation, long after it was ready
    wait(fake, PollSchedule(wait=fake.wait))
    assert len(fake.polls) == 1 and fake.polls[0] == pytest.approx(600.01)


def test_too_little_time_left_leaves_the_job_for_a_later_receive():
    fake = FakeSegmind()
    with pytest.raises(ResultPendingError):
        wait(fake, PollSchedule(wait=fake.wait), remaining_ms=1200)
    assert fake.polls == []  # no sleep and no poll: the first poll (0.25 s, and 1 s to spare) is past the end


def test_a_failed_job_is_lost():
    fake = FakeSegmind(status_after_ready="FAILED")
    with pytest.raises(ResultLostError):
        wait(fake, PollSchedule(wait=fake.wait))


def test_shortest_step_bounds_the_polls_of_a_very_fast_service():
    schedule = PollSchedule()
    _, polls = run_jobs(schedule, [0.2] * 20)
    assert schedule.plan("DEFAULT", "1536x640")[0].step_s == SHORTEST_STEP_S
    assert max(polls[3:]) <= 6


def test_a_job_whose_sibling_is_seen_done_is_asked_for_at_once_not_at_its_next_early_poll():
    fake = FakeSegmind()
    schedule = PollSchedule(wait=fake.wait)
    # A sibling submitted with it, polled on its own early schedule, is seen done at 3.05 s (not ready at 2.6 s).
    fake.lessons.append((3.05, schedule, ("DEFAULT", "1536x640", 2.6, 3.05)))
    wait(fake, schedule)
    alone = [FIRST_POLL_S * EARLY_GROWTH**index for index in range(8)]
    assert fake.polls[-1] == pytest.approx(3.05 + 0.01)  # the next early poll would have been 4.3 s
    assert fake.polls[:-1] == pytest.approx([at + 0.01 for at in alone if at < 3.05])
