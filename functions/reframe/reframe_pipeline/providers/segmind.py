"""Segmind's Ideogram 3.0 Reframe: JSON body with the source as a (presigned) URL, image bytes back."""

from __future__ import annotations

from typing import Any

from ..errors import ProviderRejectedError
from ..ports import ReframeRequest, ReframeResult
from .http import RemoteProvider, decode_image_response


class SegmindProvider(RemoteProvider):
    name = "segmind"

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
        body = self.body(request)
        headers = {"x-api-key": key, "Accept": "image/*, application/json"}

        def send() -> ReframeResult:
            response, meta = self._post(key, json=body, headers=headers)
            data, content_type = decode_image_response(response, request.resolution, self._session, self.timeout)
            return ReframeResult(body=data, content_type=content_type, seed=request.params.seed, provider_meta=meta)

        return self._with_retries(send, request)
