"""Segmind's Ideogram 3.0 Reframe: JSON body with the source as a (presigned) URL.

Two APIs serve it. The asynchronous v2 answers a request id at once and keeps the result an hour: the
id is stored before waiting, so a generation survives the invocation that paid for it. The synchronous v1
answers the image bytes (nothing to resume), or JSON with the image's URL: that URL is a ticket too, stored
before the download, so a failed download is fetched again, never generated again. ``SEGMIND_API_MODE=auto``
tries v2 and falls back to v1, for the life of the process, when the model is not served there."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Literal

import requests

from reframe_pipeline.adapters.providers.poll_schedule import PollSchedule
from reframe_pipeline.adapters.providers.remote import RemoteProvider, Submit
from reframe_pipeline.adapters.providers.responses import (
    ResultLostError,
    ResultPendingError,
    classify,
    decode_image_response,
    fetch_result,
    result_url,
)
from reframe_pipeline.adapters.providers.retrying import clamped_timeout
from reframe_pipeline.adapters.providers.sessions import Timeout
from reframe_pipeline.application.values import ReframeRequest, ReframeResult, Ticket
from reframe_pipeline.domain.errors import ProviderAccountError, ProviderRejectedError
from reframe_pipeline.observability import logger

ApiMode = Literal["auto", "async", "sync"]
# Segmind keeps a v2 result one hour; a little less is assumed, for clocks and the collection itself.
RESULT_TTL_S = 3300
_ON_TIME_S = 0.001  # a poll due within this is made now: no wait shorter than the clock can tell


def v2_url(v1_url: str) -> str:
    """``https://host/v1/<model>`` -> ``https://host/v2/<model>``."""
    head, sep, model = v1_url.rpartition("/v1/")
    return f"{head}/v2/{model}" if sep else v1_url


class SegmindProvider(RemoteProvider):
    name = "segmind"

    def __init__(
        self,
        *,
        mode: ApiMode = "auto",
        schedule: PollSchedule | None = None,
        clock: Callable[[], float] = time.time,
        **transport: Any,
    ) -> None:
        super().__init__(**transport)
        self._mode: ApiMode = mode
        self._schedule = schedule or PollSchedule()  # learned by this provider, built once per process
        self._clock = clock
        self.polls = 0  # status polls made by this provider: the benchmarks read it

    @staticmethod
    def body(request: ReframeRequest) -> dict[str, Any]:
        params = request.params
        body: dict[str, Any] = {
            "image": request.source.url,
            "resolution": str(request.resolution),
            "rendering_speed": params.rendering_speed,
            "style_codes": list(params.style_codes),
            "style_reference_images": list(params.style_reference_urls),
        }
        if params.seed is not None:
            body["seed"] = params.seed
        if params.color_palette is not None:
            body["color_palette"] = params.color_palette
        return body

    def _submitter(self, request: ReframeRequest, key: str) -> Submit:
        if not request.source.url.startswith(("https://", "http://")):
            raise ProviderRejectedError("Segmind needs the source as an http(s) URL", code="bad_source")
        body = self.body(request)
        # As Segmind's official SDK sends: a narrower Accept risks a 406 Not Acceptable, which would read as
        # Segmind's 406 "insufficient credits".
        headers = {"x-api-key": key, "Accept": "*/*"}

        def submit(timeout: Timeout) -> Ticket | ReframeResult:
            if self._mode != "sync":
                try:
                    return self._submit_async(key, body, headers, timeout)
                except ProviderAccountError as exc:
                    if exc.status != 404 or self._mode == "async":
                        raise
                    logger.info("the model is not served on Segmind's async API: using the sync one")
                    self._mode = "sync"
            response, meta = self._post(self._url, key, timeout, json=body, headers=headers)
            seed = _seed_used(request, response)
            if (url := result_url(response)) is not None:  # a ticket: journaled, then downloaded (free)
                return Ticket(provider=self.name, result_url=url, expires_at=self._clock() + RESULT_TTL_S, seed=seed)
            data, content_type = decode_image_response(response, request.resolution, self._session, timeout)
            return ReframeResult(body=data, content_type=content_type, seed=seed, provider_meta=meta)

        return Submit(submit)

    def _submit_async(self, key: str, body: dict[str, Any], headers: dict[str, str], timeout: Timeout) -> Ticket:
        response, _ = self._post(v2_url(self._url), key, timeout, json=body, headers=headers)
        document = _json(response)
        request_id = str(document.get("request_id") or "")
        if not request_id:
            raise ResultLostError(f"Segmind's async API answered no request id: {str(document)[:200]}")
        base = v2_url(self._url).rsplit("/", 1)[0]
        return Ticket(
            provider=self.name,
            result_url=str(document.get("response_url") or f"{base}/requests/{request_id}"),
            status_url=str(document.get("status_url") or f"{base}/requests/{request_id}/status"),
            expires_at=self._clock() + RESULT_TTL_S,
        )

    def _collect(self, ticket: Ticket, request: ReframeRequest, key: str, timeout: Timeout) -> ReframeResult:
        """Wait for the job (never past the invocation's end: then a later receive resumes), then fetch."""
        if ticket.status_url is None:  # v1's result URL: no job, and no key sent to the host serving it
            data, content_type = fetch_result(ticket.result_url, request.resolution, self._session, timeout)
            return ReframeResult(body=data, content_type=content_type, seed=ticket.seed)
        self._wait_for(ticket.status_url, ticket, request, key)
        timeout = clamped_timeout(self._policy, request.deadline, self._reserve_ms)
        response = self._get(ticket.result_url, key, timeout)
        data, content_type = decode_image_response(response, request.resolution, self._session, timeout)
        return ReframeResult(body=data, content_type=content_type, seed=_seed_used(request, response))

    def _wait_for(self, status_url: str, ticket: Ticket, request: ReframeRequest, key: str) -> None:
        """Poll the job's status on the schedule learned for its speed and resolution until it is done; planned
        again whenever another job teaches the schedule something (a sibling done is a hint this one is)."""
        speed, resolution = request.params.rendering_speed, str(request.resolution)
        phase = self._schedule.phase()
        submitted = ticket.expires_at - RESULT_TTL_S  # the ticket's expiry was set from its submission
        polled: float | None = None
        while True:
            plan, lessons = self._schedule.plan(speed, resolution, phase)
            wait_s = plan.next_after(polled) - (self._clock() - submitted)
            if wait_s > _ON_TIME_S:
                if request.deadline.remaining_ms() - self._reserve_ms < (wait_s + 1) * 1000:
                    raise ResultPendingError("Segmind is still generating; a later receive collects the result")
                self._schedule.pause(lessons, wait_s)
                continue
            timeout = clamped_timeout(self._policy, request.deadline, self._reserve_ms)
            status = str(_json(self._get(status_url, key, timeout)).get("status", "")).upper()
            self.polls += 1
            now = self._clock() - submitted
            if status == "COMPLETED":
                self._schedule.learn(speed, resolution, polled, now)
                return
            if status == "FAILED":
                raise ResultLostError("Segmind's job failed")
            polled = now

    def _get(self, url: str, key: str, timeout: Timeout) -> requests.Response:
        response = self._session.get(url, headers={"x-api-key": key}, timeout=timeout)
        if response.status_code in (404, 410, 422):  # expired, unknown or failed: the result is gone
            raise ResultLostError(f"Segmind's result answered HTTP {response.status_code}")
        if response.status_code != 200:
            raise classify(response, key)
        return response


def _seed_used(request: ReframeRequest, response: requests.Response) -> int | None:
    """The seed asked for; else the one Segmind reports, when it does (undocumented: a ``seed`` in a JSON
    answer, at the top or in its ``metrics``), so a variant people liked can be made again."""
    if request.params.seed is not None:
        return request.params.seed
    if "json" not in response.headers.get("Content-Type", ""):
        return None
    try:
        document = response.json()
    except ValueError:
        return None
    if not isinstance(document, dict):
        return None
    metrics = document.get("metrics")
    for seed in (document.get("seed"), metrics.get("seed") if isinstance(metrics, dict) else None):
        if isinstance(seed, int) and not isinstance(seed, bool) and seed >= 0:
            return seed
    return None


def _json(response: requests.Response) -> dict[str, Any]:
    try:
        document = response.json()
    except ValueError:
        document = None
    if not isinstance(document, dict):
        raise ResultLostError("Segmind's async API answered something other than a JSON object")
    return document
