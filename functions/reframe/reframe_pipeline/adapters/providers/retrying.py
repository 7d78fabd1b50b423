"""Retrying a provider or webhook request: backoff with full jitter that honours Retry-After, timeouts cut to
the Lambda deadline, each attempt in a limiter slot and its cost given back when provably not billed."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass

import requests

from reframe_pipeline.adapters.providers.limiter import AimdLimiter
from reframe_pipeline.adapters.providers.responses import ResultLostError, WrongSizeAnswerError
from reframe_pipeline.adapters.providers.sessions import Timeout
from reframe_pipeline.application.deadline import Deadline
from reframe_pipeline.application.values import Refund
from reframe_pipeline.domain.errors import (
    DeadlineError,
    ProviderError,
    ProviderTransientError,
)
from reframe_pipeline.observability import count, logger


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 4
    base_s: float = 1.0
    max_s: float = 20.0
    connect_timeout_s: float = 5.0
    read_timeout_s: float = 90.0


def _network_error(exc: requests.RequestException, provider: str) -> ProviderTransientError:
    """A connection that never reached the provider cannot have been billed; one lost later may have."""
    never_sent = isinstance(exc, requests.ConnectTimeout) or "NewConnectionError" in repr(exc)
    return ProviderTransientError(f"{type(exc).__name__} talking to {provider}", code="network", billed=not never_sent)


def clamped_timeout(policy: RetryPolicy, deadline: Deadline, reserve_ms: int) -> Timeout:
    """The request's timeouts, cut to the time this invocation has left before its upload reserve: a
    call must never outlive the invocation (it would be killed mid-call, its paid result lost)."""
    left_s = (deadline.remaining_ms() - reserve_ms) / 1000
    if left_s < 1.0:
        raise DeadlineError("too little time left in this invocation for another request")
    return (min(policy.connect_timeout_s, left_s), min(policy.read_timeout_s, left_s))


@dataclass(frozen=True)
class CallPlan:
    """How one kind of request is repeated: the policy, the deadline and the reserves, and whether each
    attempt is paid (``charge`` reserves its cost and returns the refund for an attempt that cost nothing)."""

    policy: RetryPolicy
    deadline: Deadline
    min_remaining_ms: int  # no attempt starts with less time left
    reserve_ms: int  # kept after the last request for the upload and the manifest
    provider: str
    charge: Callable[[], Refund] | None = None
    retries_metric: str = "ProviderRetries"  # the webhook counts its own
    throttled_metric: str | None = "ProviderThrottled"  # each 429 answer (the dashboard's "429s")


# Failures that the same request cannot fix: the caller decides (a new generation, or a later receive).
_NOT_REPEATED = (WrongSizeAnswerError, ResultLostError)


def call_with_retries[T](send: Callable[[Timeout], T], plan: CallPlan, limiter: AimdLimiter) -> T:
    """Run ``send`` until it succeeds, fails for good, or retrying would overrun the deadline.
    ``send`` gets its timeouts and raises ProviderError subclasses (transient ones carry .retry_after).
    Each attempt holds a slot of ``limiter``, which 429s narrow and successes widen."""
    attempt = 0
    while True:
        attempt += 1
        try:
            return _attempt(send, plan, limiter)
        except _NOT_REPEATED:
            raise
        except ProviderTransientError as failure:
            delay = _retry_delay(failure, attempt, plan)
            logger.warning(
                "provider call failed, retrying",
                extra={"attempt": attempt, "error_code": failure.code, "error": failure.message, "retry_in_s": delay},
            )
        count(plan.retries_metric)
        time.sleep(delay)


def _attempt[T](send: Callable[[Timeout], T], plan: CallPlan, limiter: AimdLimiter) -> T:
    """One request in a limiter slot, its cost reserved first and given back when provably not billed."""
    timeout = clamped_timeout(plan.policy, plan.deadline, plan.reserve_ms)
    slot = limiter.acquire(timeout_s=max(0.0, (plan.deadline.remaining_ms() - plan.min_remaining_ms) / 1000))
    if slot is None:
        raise DeadlineError(f"no {plan.provider} call slot came free before the deadline (calls throttled)")
    throttled = succeeded = False
    try:
        refund = plan.charge() if plan.charge else None
        try:
            result = send(timeout)
        except requests.RequestException as exc:
            failure: ProviderError = _network_error(exc, plan.provider)
        except ProviderError as exc:
            failure = exc
        else:
            succeeded = True
            return result
        throttled = failure.status == 429
        if throttled and plan.throttled_metric:
            count(plan.throttled_metric)
        if refund is not None and not failure.billed:
            refund()
        raise failure
    finally:
        lowered = limiter.release(slot, throttled=throttled, succeeded=succeeded)
        if lowered is not None:
            logger.warning("provider throttled: fewer calls in flight", extra={"concurrency_limit": lowered})
            count("ProviderConcurrencyLimit", lowered)


def _retry_delay(failure: ProviderTransientError, attempt: int, plan: CallPlan) -> float:
    """Seconds to wait before the next attempt (full jitter, or the provider's Retry-After); raises
    when there is no next attempt: attempts used up, or the deadline would pass first."""
    policy = plan.policy
    if attempt >= policy.max_attempts:
        raise failure
    ceiling = min(policy.max_s, policy.base_s * 2 ** (attempt - 1))
    delay = random.uniform(0, ceiling)  # noqa: S311 - jitter, not cryptography
    if failure.retry_after is not None:
        delay = failure.retry_after + random.uniform(0, min(1.0, ceiling))  # noqa: S311
    if plan.deadline.remaining_ms() - delay * 1000 < plan.min_remaining_ms:
        raise DeadlineError(
            f"{failure.message}; not retrying: the invocation would end before another attempt"
        ) from failure
    return round(delay, 3)
