"""Segmind's Ideogram 3.0 Reframe: JSON body with the source as a (presigned) URL, image bytes back."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import requests

from ..errors import ProviderRejectedError
from ..observability import logger
from ..ports import ReframeRequest, ReframeResult
from .http import (
    RetryPolicy,
    call_with_retries,
    classify,
    decode_image_response,
    media_headers,
)


class SegmindProvider:
    name = "segmind"

    def __init__(
        self,
        url: str,
        api_key: Callable[[], str],
        session: requests.Session,
        policy: RetryPolicy,
        min_remaining_ms: int,
    ) -> None:
        self._url = url
        self._api_key = api_key
        self._session = session
        self._policy = policy
        self._min_remaining_ms = min_remaining_ms

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

    def reframe(self, request: ReframeRequest) -> ReframeResult:
        if not request.source.url.startswith(("https://", "http://")):
            raise ProviderRejectedError("Segmind needs the source as an http(s) URL", code="bad_source")
        key = self._api_key()
        timeout = (self._policy.connect_timeout_s, self._policy.read_timeout_s)
        body = self.body(request)

        def send() -> ReframeResult:
            started = time.monotonic()
            response = self._session.post(
                self._url,
                json=body,
                headers={"x-api-key": key, "Accept": "image/*, application/json"},
                timeout=timeout,
            )
            meta = media_headers(response)
            logger.debug(
                "provider answered",
                extra={
                    "status": response.status_code,
                    "latency_ms": int((time.monotonic() - started) * 1000),
                    **meta,
                },
            )
            if response.status_code != 200:
                raise classify(response, key)
            data, content_type = decode_image_response(response, request.resolution, self._session, timeout)
            return ReframeResult(body=data, content_type=content_type, seed=request.params.seed, provider_meta=meta)

        return call_with_retries(
            send,
            policy=self._policy,
            deadline=request.deadline,
            min_remaining_ms=self._min_remaining_ms,
            provider=self.name,
        )
