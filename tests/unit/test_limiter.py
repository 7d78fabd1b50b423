"""The AIMD limiter of provider calls: deterministic, no sleeps (a zero timeout tells 'would wait').
Composition builds one per process, of MAX_PARALLEL_CALLS, and hands it to the provider."""

import json

import pytest
import requests

from reframe_pipeline.adapters.providers.limiter import PROBE_STEP, AimdLimiter
from reframe_pipeline.adapters.providers.retrying import CallPlan, RetryPolicy, call_with_retries
from reframe_pipeline.adapters.providers.segmind import SegmindProvider
from reframe_pipeline.application.deadline import Deadline
from reframe_pipeline.application.source_image import SourceImage
from reframe_pipeline.application.values import GenerationParams, ReframeRequest, ReframeResult
from reframe_pipeline.domain.errors import (
    DeadlineError,
    ProviderError,
    ProviderRejectedError,
    ProviderTransientError,
)
from reframe_pipeline.domain.resolutions import Size


def fill(limiter):
    slots = []
    while (slot := limiter.acquire(timeout_s=0)) is not None:
        slots.append(slot)
    return slots


def test_lets_through_up_to_the_maximum():
    limiter = AimdLimiter(3)
    slots = fill(limiter)
    assert len(slots) == 3 == limiter.in_flight
    limiter.release(slots[0])
    assert limiter.acquire(timeout_s=0) is not None


def test_a_429_halves_the_limit_once_per_overload():
    limiter = AimdLimiter(8)
    slots = fill(limiter)
    assert limiter.release(slots[0], throttled=True) == 4
    # The other calls sent under the old limit say nothing new: no second halving.
    assert limiter.release(slots[1], throttled=True) is None
    assert limiter.limit == 4
    assert limiter.acquire(timeout_s=0) is None  # 6 still in flight, 4 allowed


def test_never_below_one():
    limiter = AimdLimiter(2)
    for _ in range(5):
        slot = limiter.acquire(timeout_s=0)
        limiter.release(slot, throttled=True)
    assert limiter.limit == 1
    assert limiter.acquire(timeout_s=0) is not None


def test_successes_return_fast_to_the_last_good_level_then_probe_slowly():
    limiter = AimdLimiter(8)
    limiter.release(limiter.acquire(timeout_s=0), throttled=True)  # 8 -> 4, last good 7
    limiter.release(limiter.acquire(timeout_s=0), throttled=True)  # 4 -> 2, last good 3
    assert limiter.limit == 2
    limiter.release(limiter.acquire(timeout_s=0), succeeded=True)
    assert limiter.limit == 3  # +1 per success up to the last good level
    for _ in range(3):
        limiter.release(limiter.acquire(timeout_s=0), succeeded=True)
    # Then a slow climb: PROBE_STEP per round of ``limit`` successes.
    assert limiter.limit == 3
    rounds = round(1 / PROBE_STEP)
    for _ in range(3 * rounds):
        limiter.release(limiter.acquire(timeout_s=0), succeeded=True)
    assert limiter.limit == 4


def test_grows_no_higher_than_the_maximum():
    limiter = AimdLimiter(2)
    for _ in range(100):
        limiter.release(limiter.acquire(timeout_s=0), succeeded=True)
    assert limiter.limit == 2


def test_failures_other_than_429_leave_the_limit():
    limiter = AimdLimiter(4)
    limiter.release(limiter.acquire(timeout_s=0))
    assert limiter.limit == 4


FAST = RetryPolicy(max_attempts=3, base_s=0.0, max_s=0.0)


def test_each_attempt_holds_a_slot_and_a_429_narrows_the_limit():
    limiter = AimdLimiter(8)
    seen = []
    outcomes = [ProviderTransientError("busy", status=429), None]

    def send(timeout):
        seen.append(limiter.in_flight)
        if failure := outcomes.pop(0):
            raise failure
        return ReframeResult(body=b"img", content_type="image/png")

    call_with_retries(send, CallPlan(FAST, Deadline(), min_remaining_ms=0, reserve_ms=0, provider="p"), limiter)
    assert seen == [1, 1]
    assert limiter.in_flight == 0
    assert limiter.limit == 5  # halved to 4, then one success back towards the last good level (7)


def test_no_free_slot_before_the_deadline():
    limiter = AimdLimiter(1)
    limiter.acquire(timeout_s=0)

    def send(timeout):
        raise AssertionError("must not be sent")

    with pytest.raises(DeadlineError, match="slot"):
        call_with_retries(
            send, CallPlan(FAST, Deadline(lambda: 2_000), min_remaining_ms=2_000, reserve_ms=0, provider="p"), limiter
        )


class Answering400:
    """A session whose every POST is answered 400 Bad Request, as a provider refusing the request does."""

    def __init__(self) -> None:
        self.posts = 0

    def post(self, url, **_):
        self.posts += 1
        response = requests.Response()
        response.status_code = 400
        response._content = json.dumps({"error": "invalid resolution"}).encode()
        response.headers["Content-Type"] = "application/json"
        return response


class FreeMeter:
    def charge(self):
        return lambda: None

    def submitted(self, ticket):
        pass


def test_composition_builds_the_providers_limiter_of_max_parallel_calls():
    from reframe_pipeline.composition.providers import build_provider
    from reframe_pipeline.settings import Settings

    settings = Settings(max_parallel_calls=3, segmind_api_key="k")
    first, second = build_provider(settings), build_provider(settings)
    assert first._limiter.limit == 3  # type: ignore[attr-defined]
    assert first._limiter is not second._limiter  # type: ignore[attr-defined]  # no state shared across builds


def test_a_call_answered_400_gives_its_slot_back():
    session = Answering400()
    provider = SegmindProvider(
        mode="sync",
        url="https://api.segmind.example/v1/ideogram-3-reframe",
        api_key=lambda: "k",
        session=session,
        policy=FAST,
        min_remaining_ms=0,
        reserve_ms=0,
        limiter=(limiter := AimdLimiter()),
    )
    request = ReframeRequest(
        SourceImage("https://bucket.example/photo.jpg", lambda: b""),
        Size(1024, 1024),
        GenerationParams(),
        Deadline(),
        FreeMeter(),
    )
    limit = limiter.limit

    with pytest.raises(ProviderRejectedError) as caught:
        provider.reframe(request)

    assert caught.value.status == 400
    assert session.posts == 1  # a permanent error: not repeated
    assert limiter.in_flight == 0
    assert limiter.limit == limit  # and no sign of overload: the limit stays


def test_every_failed_attempt_gives_its_slot_back():
    limiter = AimdLimiter(2)
    failures = [
        ProviderRejectedError("refused", status=400),
        ProviderTransientError("busy", status=429),
        ProviderTransientError("down", status=503),
        requests.ConnectionError("refused"),
        RuntimeError("a bug"),
    ]
    for failure in failures:

        def send(timeout, failure=failure):
            raise failure

        plan = CallPlan(RetryPolicy(max_attempts=1, base_s=0.0, max_s=0.0), Deadline(), 0, 0, "p")
        with pytest.raises((ProviderError, RuntimeError)):
            call_with_retries(send, plan, limiter)
        assert limiter.in_flight == 0, failure
