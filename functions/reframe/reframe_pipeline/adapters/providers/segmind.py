"""Segmind's Ideogram 3.0 Reframe: JSON body with the source as a (presigned) URL.

Two APIs serve it. The asynchronous v2 answers a request id at once and keeps the result an hour: the
id is stored before waiting, so a generation survives the invocation that paid for it. The synchronous v1
answers the image bytes (nothing to resume). ``SEGMIND_API_MODE=auto`` tries v2 and falls back to v1,
for the life of the process, when the model is not served there."""

from __future__ import annotations

import time
from typing import Any, Literal

import requests

from reframe_pipeline.adapters.providers.remote import RemoteProvider, Submit
from reframe_pipeline.adapters.providers.responses import (
    ResultLostError,
    ResultPendingError,
    classify,
    decode_image_response,
)
from reframe_pipeline.adapters.providers.retrying import clamped_timeout
from reframe_pipeline.adapters.providers.sessions import Timeout
from reframe_pipeline.application.values import ReframeRequest, ReframeResult, Ticket
from reframe_pipeline.domain.errors import ProviderAccountError, ProviderRejectedError
from reframe_pipeline.observability import logger

ApiMode = Literal["auto", "async", "sync"]
# Segmind keeps a v2 result one hour; a little less is assumed, for clocks and the collection itself.
RESULT_TTL_S = 3300
_POLL_FIRST_S, _POLL_MAX_S = 0.2, 2.0


def v2_url(v1_url: str) -> str:
    """``https://host/v1/<model>`` -> ``https://host/v2/<model>``."""
    head, sep, model = v1_url.rpartition("/v1/")
    return f"{head}/v2/{model}" if sep else v1_url


class SegmindProvider(RemoteProvider):
    name = "segmind"

    def __init__(self, *, mode: ApiMode = "auto", **transport: Any) -> None:
        super().__init__(**transport)
        self._mode: ApiMode = mode

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
            data, content_type = decode_image_response(response, request.resolution, self._session, timeout)
            seed = _seed_used(request, response)
            return ReframeResult(body=data, content_type=content_type, seed=seed, provider_meta=meta)

        return submit

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
            expires_at=time.time() + RESULT_TTL_S,
        )

    def _collect(self, ticket: Ticket, request: ReframeRequest, key: str, timeout: Timeout) -> ReframeResult:
        """Wait for the job (never past the invocation's end: then a later receive resumes), then fetch."""
        wait_s = _POLL_FIRST_S
        while ticket.status_url is not None:
            status = str(_json(self._get(ticket.status_url, key, timeout)).get("status", "")).upper()
            if status == "COMPLETED":
                break
            if status == "FAILED":
                raise ResultLostError("Segmind's job failed")
            if request.deadline.remaining_ms() - self._reserve_ms < (wait_s + 1) * 1000:
                raise ResultPendingError("Segmind is still generating; a later receive collects the result")
            time.sleep(wait_s)
            wait_s = min(_POLL_MAX_S, wait_s * 2)
            timeout = clamped_timeout(self._policy, request.deadline, self._reserve_ms)
        response = self._get(ticket.result_url, key, timeout)
        data, content_type = decode_image_response(response, request.resolution, self._session, timeout)
        return ReframeResult(body=data, content_type=content_type, seed=_seed_used(request, response))

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
