"""The remote providers' common part: a generation paid for once (``submit``), then collected (``collect``),
again from a ticket kept by an earlier attempt or invocation."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import requests

from reframe_pipeline.adapters.providers.limiter import AimdLimiter
from reframe_pipeline.adapters.providers.responses import (
    ResultLostError,
    ResultPendingError,
    WrongSizeAnswerError,
    classify,
    media_headers,
)
from reframe_pipeline.adapters.providers.retrying import CallPlan, RetryPolicy, call_with_retries
from reframe_pipeline.adapters.providers.sessions import Timeout
from reframe_pipeline.adapters.providers.shared_slots import SharedSlots
from reframe_pipeline.application.values import ReframeRequest, ReframeResult, Ticket
from reframe_pipeline.domain.errors import (
    DeadlineError,
    ProviderRejectedError,
    ProviderTransientError,
)
from reframe_pipeline.observability import count, logger

# Attempts whose answers are a whole image of the wrong size: one more generation is paid for, then none.
WRONG_SIZE_ROUNDS = 2
_BROKEN_ANSWERS = frozenset({"bad_image", "bad_body"})

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
        limiter: AimdLimiter,
        slots: SharedSlots | None = None,
    ) -> None:
        self._limiter = limiter  # the process's, shared by every call of every thread
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
            made = call_with_retries(submit, self._plan(request, paid=True), self._limiter)
            if isinstance(made, ReframeResult):
                return made
            ticket = made
            request.meter.submitted(ticket)  # stored before waiting: the result is now recoverable
        held = ticket
        try:
            return call_with_retries(
                lambda timeout: self._collect(held, request, key, timeout), self._plan(request), self._limiter
            )
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
