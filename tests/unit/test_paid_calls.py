"""The rules of paying for a generation, with an in-memory provider: each attempt reserved, refunds only
for attempts that cost nothing, a held result collected instead of paid again, wrong sizes paid once more
and then refused, and no request allowed to outlive the invocation."""

from __future__ import annotations

import time

import pytest

from reframe_pipeline.adapters.providers.limiter import AimdLimiter
from reframe_pipeline.adapters.providers.remote import RemoteProvider
from reframe_pipeline.adapters.providers.responses import ResultLostError, ResultPendingError, WrongSizeAnswerError
from reframe_pipeline.adapters.providers.retrying import RetryPolicy, clamped_timeout
from reframe_pipeline.adapters.providers.sessions import Timeout
from reframe_pipeline.application.deadline import Deadline
from reframe_pipeline.application.source_image import SourceImage
from reframe_pipeline.application.values import GenerationParams, ReframeRequest, ReframeResult, Ticket
from reframe_pipeline.domain.errors import DeadlineError, ProviderRejectedError, ProviderTransientError
from reframe_pipeline.domain.resolutions import Size

FAST = RetryPolicy(max_attempts=3, base_s=0.0, max_s=0.0)
RESULT = ReframeResult(body=b"image", content_type="image/png")


class Meter:
    def __init__(self) -> None:
        self.charged = 0
        self.refunded = 0
        self.tickets: list[Ticket | None] = []

    def charge(self):
        self.charged += 1

        def refund() -> None:
            self.refunded += 1

        return refund

    def submitted(self, ticket: Ticket | None) -> None:
        self.tickets.append(ticket)


class ScriptedProvider(RemoteProvider):
    """Submits answer tickets (or raise) and collections return the image (or raise), from scripts."""

    def __init__(self, submits: list[object], collects: list[object]) -> None:
        super().__init__(
            "https://p.example", lambda: "k", None, FAST, min_remaining_ms=0, reserve_ms=0, limiter=AimdLimiter()
        )  # type: ignore[arg-type]
        self.submits, self.collects = submits, collects
        self.timeouts: list[Timeout] = []

    def _submitter(self, request, key):
        def submit(timeout: Timeout):
            self.timeouts.append(timeout)
            outcome = self.submits.pop(0)
            if isinstance(outcome, Exception):
                raise outcome
            return outcome

        return submit

    def _collect(self, ticket, request, key, timeout):
        outcome = self.collects.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome


def ticket(url: str = "https://results.example/1", ttl_s: float = 3600) -> Ticket:
    return Ticket(provider="p", result_url=url, expires_at=time.time() + ttl_s)


def request(meter: Meter, resume: Ticket | None = None, deadline: Deadline | None = None) -> ReframeRequest:
    source = SourceImage("https://s/1", lambda: b"")
    return ReframeRequest(source, Size(1024, 1024), GenerationParams(), deadline or Deadline(), meter, resume)


def test_a_held_result_is_collected_without_paying_again():
    meter, provider = Meter(), ScriptedProvider(submits=[], collects=[RESULT])
    assert provider.reframe(request(meter, resume=ticket())) is RESULT
    assert meter.charged == 0


def test_an_expired_ticket_is_paid_for_again():
    meter, provider = Meter(), ScriptedProvider(submits=[ticket()], collects=[RESULT])
    provider.reframe(request(meter, resume=ticket(ttl_s=60)))  # within the collection margin
    assert meter.charged == 1


def test_the_ticket_is_stored_before_collecting():
    meter = Meter()
    held = ticket()
    provider = ScriptedProvider(submits=[held], collects=[ProviderTransientError("lost"), RESULT])
    provider.reframe(request(meter))
    assert meter.tickets == [held]
    assert meter.charged == 1  # the failed download was fetched again, not generated again


@pytest.mark.parametrize(
    ("failure", "refunded"),
    [
        (ProviderTransientError("throttled", status=429, billed=False), 1),
        (ProviderTransientError("server error", status=500, billed=True), 0),
    ],
)
def test_only_attempts_that_provably_cost_nothing_are_refunded(failure, refunded):
    meter, provider = Meter(), ScriptedProvider(submits=[failure, ticket()], collects=[RESULT])
    provider.reframe(request(meter))
    assert (meter.charged, meter.refunded) == (2, refunded)


def test_a_wrong_size_is_paid_once_more_then_refused():
    wrong = WrongSizeAnswerError("image is 960x1024, expected 1024x1024")
    meter = Meter()
    provider = ScriptedProvider(submits=[ticket(), ticket(), ticket()], collects=[wrong, wrong, RESULT])
    with pytest.raises(ProviderRejectedError) as caught:
        provider.reframe(request(meter))
    assert caught.value.code == "wrong_size"
    assert meter.charged == 2 and meter.refunded == 0
    assert meter.tickets[-1] is None  # the useless ticket is forgotten


def test_a_lost_result_is_generated_again_once():
    meter = Meter()
    provider = ScriptedProvider(submits=[ticket()], collects=[ResultLostError("expired"), RESULT])
    assert provider.reframe(request(meter, resume=ticket())) is RESULT
    assert meter.charged == 1


def test_request_timeouts_never_outlive_the_invocation():
    policy = RetryPolicy(connect_timeout_s=5, read_timeout_s=90)
    assert clamped_timeout(policy, Deadline(lambda: 36_000), reserve_ms=5_000) == (5, 31.0)
    with pytest.raises(DeadlineError):
        clamped_timeout(policy, Deadline(lambda: 5_500), reserve_ms=5_000)


def test_each_request_gets_the_clamped_timeout():
    meter, provider = Meter(), ScriptedProvider(submits=[ticket()], collects=[RESULT])
    provider.reframe(request(meter, deadline=Deadline(lambda: 12_000)))
    assert provider.timeouts == [(5.0, 12.0)]


def test_running_out_of_time_while_collecting_leaves_the_paid_generation_pending():
    # However the time runs out once the ticket is journaled (a poll that would overrun, a request with
    # no time left), the variant is "pending": the record comes back and the ticket is collected.
    meter, held = Meter(), ticket()
    provider = ScriptedProvider(submits=[held], collects=[DeadlineError("too little time left")])
    with pytest.raises(ResultPendingError, match="collected later") as raised:
        provider.reframe(request(meter))
    assert raised.value.code == "pending"
    assert meter.tickets == [held] and meter.charged == 1
