"""What the remote providers share: one pooled HTTP session, retries with backoff and jitter that
honour Retry-After and the Lambda deadline, error classification, and response decoding."""

from __future__ import annotations

import base64
import binascii
import json
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from reframe_pipeline.adapters.providers.limiter import LIMITER, AimdLimiter
from reframe_pipeline.adapters.providers.shared_slots import SharedSlots
from reframe_pipeline.application.ports import Deadline, ReframeRequest, ReframeResult, Refund, Ticket
from reframe_pipeline.domain.errors import (
    DeadlineError,
    ProviderAccountError,
    ProviderError,
    ProviderRejectedError,
    ProviderTransientError,
)
from reframe_pipeline.domain.imaging import FORMATS, ImageCheckError, WrongSizeError, verify
from reframe_pipeline.domain.resolutions import Size
from reframe_pipeline.observability import count, logger

TRANSIENT_STATUSES = frozenset({408, 429, 500, 502, 503, 504})


def is_transient(status: int) -> bool:
    """An HTTP status that may pass on its own: worth asking again."""
    return status in TRANSIENT_STATUSES or status >= 500


# Account conditions (key, permissions, credits: Segmind's 406, Ideogram's 402): wait, alarm, come back.
ACCOUNT_STATUSES = frozenset({401, 402, 403, 404, 406})
_MEDIA_HEADERS = ("x-request-id", "x-credits-consumed", "x-remaining-credits", "x-rate-limit-remaining")
# Attempts whose answers are a whole image of the wrong size: one more generation is paid for, then none.
WRONG_SIZE_ROUNDS = 2

Timeout = tuple[float, float]


class WrongSizeAnswerError(ProviderTransientError):
    """A whole image of another size than asked for: a new generation may be right, the same one never."""

    code = "wrong_size"


class ResultLostError(ProviderTransientError):
    """The provider no longer holds a paid result (job failed, result expired): generate again."""

    code = "result_lost"


class ResultPendingError(DeadlineError):
    """The generation is paid for and still running when the invocation must end: a later receive
    collects it with the stored ticket instead of paying again."""

    code = "pending"


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 4
    base_s: float = 1.0
    max_s: float = 20.0
    connect_timeout_s: float = 5.0
    read_timeout_s: float = 90.0


def pooled_session(pool_size: int) -> requests.Session:
    """A session whose pool matches the number of calls in flight (no urllib3 retries: ours decide)."""
    session = requests.Session()
    adapter = HTTPAdapter(pool_connections=2, pool_maxsize=pool_size, max_retries=0)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session


def retry_after_seconds(value: str | None) -> float | None:
    """Retry-After in seconds or as an HTTP date (urllib3 parses both)."""
    if not value:
        return None
    try:
        return max(0.0, Retry().parse_retry_after(value))
    except Exception:  # an unparseable header is ignored, not fatal
        return None


def error_message(response: requests.Response, secret: str | None) -> str:
    """A short, key-free description of an error response (JSON 'error' field, or the text)."""
    try:
        document = response.json()
        detail = document.get("error") or document.get("message") or document.get("detail") or document
    except ValueError:
        detail = " ".join(response.text.split())
    text = f"HTTP {response.status_code}: {str(detail)[:300]}"
    return text.replace(secret, "***") if secret else text


def classify(response: requests.Response, secret: str | None) -> ProviderError:
    """The error of a non-200 answer. A 4xx is refused before any generation (not billed); a 5xx may
    come after one, so its cost stays reserved."""
    status = response.status_code
    message = error_message(response, secret)
    billed = status >= 500
    if is_transient(status):
        return ProviderTransientError(
            message,
            code=f"http_{status}",
            status=status,
            retry_after=retry_after_seconds(response.headers.get("Retry-After")),
            billed=billed,
        )
    if status in ACCOUNT_STATUSES:
        return ProviderAccountError(message, code=f"http_{status}", status=status, billed=billed)
    return ProviderRejectedError(message, code=f"http_{status}", status=status, billed=billed)


def checked_image(body: bytes, expected: Size) -> tuple[bytes, str]:
    """(bytes, content type) of a whole image of the expected size, else a transient error."""
    try:
        fmt, _ = verify(body, expected)
    except WrongSizeError as exc:
        raise WrongSizeAnswerError(f"provider answered an image of the wrong size: {exc}") from None
    except ImageCheckError as exc:
        raise ProviderTransientError(f"provider answered a broken image: {exc}", code="bad_image") from None
    return body, FORMATS[fmt].mime


def fetch_result(url: str, expected: Size, session: requests.Session, timeout: Timeout) -> tuple[bytes, str]:
    """Download a result the provider left at a URL (such URLs expire). Fetching costs nothing."""
    fetched = session.get(url, timeout=timeout)
    if fetched.status_code in (403, 404, 410):  # expired or withdrawn: only a new generation helps
        raise ResultLostError(f"result URL answered HTTP {fetched.status_code}")
    if fetched.status_code != 200:
        raise ProviderTransientError(f"result URL answered HTTP {fetched.status_code}", code="result_fetch")
    return checked_image(fetched.content, expected)


def decode_image_response(
    response: requests.Response, expected: Size, session: requests.Session, timeout: Timeout
) -> tuple[bytes, str]:
    """Image bytes in the body (sniffed, whatever the content type says), or JSON carrying the image
    as base64 or as a URL to fetch at once (such URLs expire)."""
    content_type = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
    if "json" not in content_type:
        return checked_image(response.content, expected)
    try:
        document = response.json()
    except ValueError:
        raise ProviderTransientError("provider answered malformed JSON", code="bad_body") from None
    candidates = (
        [document.get(k) for k in ("image", "output", "url", "image_url")] if isinstance(document, dict) else []
    )
    for candidate in candidates:
        value = candidate[0] if isinstance(candidate, list) and candidate else candidate
        if not isinstance(value, str):
            continue
        if value.startswith(("http://", "https://")):
            return fetch_result(value, expected, session, timeout)
        try:
            raw = base64.b64decode(value.split(",", 1)[-1], validate=True)
        except (binascii.Error, ValueError):
            continue
        return checked_image(raw, expected)
    raise ProviderTransientError(
        f"provider answered JSON without an image: {json.dumps(document)[:200]}", code="bad_body"
    )


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


_BROKEN_ANSWERS = frozenset({"bad_image", "bad_body"})
# Failures that the same request cannot fix: the caller decides (a new generation, or a later receive).
_NOT_REPEATED = (WrongSizeAnswerError, ResultLostError)


def call_with_retries[T](send: Callable[[Timeout], T], plan: CallPlan, limiter: AimdLimiter = LIMITER) -> T:
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


def media_headers(response: requests.Response) -> dict[str, str]:
    return {name: response.headers[name] for name in _MEDIA_HEADERS if name in response.headers}


Submit = Callable[[Timeout], "Ticket | ReframeResult"]


class RemoteProvider:
    """What the HTTP providers share: endpoint, key, pooled session, retry policy, and the two phases of
    a generation. ``submit`` is paid: it answers the image, or a Ticket for a result the provider holds.
    ``collect`` is free: it fetches a held result, so a ticket stored by an earlier attempt or invocation
    is collected instead of paid for again. Subclasses build the requests and read the answers."""

    name = "remote"

    def __init__(
        self,
        url: str,
        api_key: Callable[[], str],
        session: requests.Session,
        policy: RetryPolicy,
        min_remaining_ms: int,
        reserve_ms: int,
        slots: SharedSlots | None = None,
    ) -> None:
        self._slots = slots
        self._url = url
        self._api_key = api_key
        self._session = session
        self._policy = policy
        self._min_remaining_ms = min_remaining_ms
        self._reserve_ms = reserve_ms

    def reframe(self, request: ReframeRequest) -> ReframeResult:
        if self._slots is None:
            return self._reframe(request)
        # One of the account's slots (PROVIDER_MAX_IN_FLIGHT) from the request until the result is collected.
        with self._slots.hold(request.deadline, self._min_remaining_ms):
            return self._reframe(request)

    def _reframe(self, request: ReframeRequest) -> ReframeResult:
        key = self._api_key()
        submit = self._submitter(request, key)
        ticket = request.resume if request.resume is not None and request.resume.alive() else None
        generation = 1
        while True:
            try:
                return self._generate(submit, ticket, request, key)
            except (WrongSizeAnswerError, ResultLostError) as exc:
                ticket = None
                request.meter.submitted(None)
                if generation == WRONG_SIZE_ROUNDS:
                    if isinstance(exc, WrongSizeAnswerError):  # the provider keeps answering it: stop paying
                        raise ProviderRejectedError(f"{exc.message} (again)", code="wrong_size") from None
                    raise
                logger.warning("generating again", extra={"error_code": exc.code, "error": exc.message})
                count("ProviderRegenerations")
                generation += 1

    def _generate(self, submit: Submit, ticket: Ticket | None, request: ReframeRequest, key: str) -> ReframeResult:
        """Pay for a generation unless ``ticket`` holds one already, then collect it."""
        if ticket is None:
            made = call_with_retries(submit, self._plan(request, paid=True))
            if isinstance(made, ReframeResult):
                return made
            ticket = made
            request.meter.submitted(ticket)  # stored before waiting: the result is now recoverable
        held = ticket
        try:
            return call_with_retries(lambda timeout: self._collect(held, request, key, timeout), self._plan(request))
        except ResultPendingError:
            raise
        except DeadlineError as exc:  # out of time while collecting: the journaled generation is waited for later
            raise ResultPendingError(f"{exc.message}; the paid generation is collected later") from None
        except ProviderTransientError as exc:
            if exc.code not in _BROKEN_ANSWERS:
                raise
            # Downloaded again and again, the held result stays broken: it is, and only a new one helps.
            raise ResultLostError(f"the provider's result stays broken: {exc.message}") from None

    def _submitter(self, request: ReframeRequest, key: str) -> Submit:
        raise NotImplementedError

    def _collect(self, ticket: Ticket, request: ReframeRequest, key: str, timeout: Timeout) -> ReframeResult:
        raise NotImplementedError

    def _plan(self, request: ReframeRequest, paid: bool = False) -> CallPlan:
        return CallPlan(
            policy=self._policy,
            deadline=request.deadline,
            min_remaining_ms=self._min_remaining_ms if paid else self._reserve_ms,
            reserve_ms=self._reserve_ms,
            provider=self.name,
            charge=request.meter.charge if paid else None,
        )

    def _post(self, url: str, key: str, timeout: Timeout, **options: Any) -> tuple[requests.Response, dict[str, str]]:
        """One attempt: the answer and its provider headers, or the classified error (key scrubbed)."""
        started = time.monotonic()
        response = self._session.post(url, timeout=timeout, **options)
        meta = media_headers(response)
        latency_ms = int((time.monotonic() - started) * 1000)
        logger.debug("provider answered", extra={"status": response.status_code, "latency_ms": latency_ms, **meta})
        if response.status_code != 200:
            raise classify(response, key)
        return response, meta
