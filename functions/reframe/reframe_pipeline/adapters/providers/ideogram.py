"""Ideogram's own Reframe API: the source and style references uploaded as files (multipart), a JSON answer
whose image URL expires (fetched at once), and a per-image safety verdict."""

from __future__ import annotations

import json
import time
from typing import Any

import requests

from reframe_pipeline.adapters.providers.remote import RemoteProvider, Submit
from reframe_pipeline.adapters.providers.responses import fetch_result
from reframe_pipeline.adapters.providers.safe_fetch import MAX_REFERENCES_BYTES, SafeFetcher
from reframe_pipeline.adapters.providers.sessions import Timeout
from reframe_pipeline.application.values import ReframeRequest, ReframeResult, Ticket
from reframe_pipeline.domain.errors import PermanentError, ProviderRejectedError, ProviderTransientError
from reframe_pipeline.domain.imaging import FORMATS, PROVIDER_FORMATS, sniff

# Ideogram keeps a result URL 24 hours; a little less is assumed.
RESULT_TTL_S = 23 * 3600

FilePart = tuple[str, tuple[str | None, bytes, str]]


def file_part(field: str, stem: str, data: bytes) -> FilePart:
    """A form file named with the extension and type of its bytes (Ideogram takes JPEG, PNG and WebP)."""
    fmt = sniff(data[:32])
    if fmt not in PROVIDER_FORMATS:
        raise PermanentError(f"{stem} is not a JPEG, PNG or WebP image ({fmt or 'unknown bytes'})", code="bad_image")
    spec = FORMATS[fmt]
    return field, (f"{stem}.{spec.ext}", data, spec.mime)


class IdeogramProvider(RemoteProvider):
    name = "ideogram"

    def __init__(self, *, storage_endpoint: str, **transport: Any) -> None:
        super().__init__(**transport)
        self._references = SafeFetcher(self._session, storage_endpoint)

    @staticmethod
    def fields(request: ReframeRequest) -> list[tuple[str, str]]:
        """The text fields of the form; style_codes repeats."""
        params = request.params
        fields = [
            ("resolution", str(request.resolution)),
            ("rendering_speed", params.rendering_speed),
            ("num_images", "1"),
        ]
        if params.seed is not None:
            fields.append(("seed", str(params.seed)))
        fields += [("style_codes", code) for code in params.style_codes]
        return fields

    def files(self, request: ReframeRequest, timeout: Timeout) -> list[FilePart]:
        """The other parts: the image, the colour palette (a JSON part, as the spec's encoding says), the
        style references (downloaded here)."""
        parts = [file_part("image", "image", request.source.load())]
        if request.params.color_palette is not None:
            parts.append(
                ("color_palette", (None, json.dumps(request.params.color_palette).encode(), "application/json"))
            )
        left = MAX_REFERENCES_BYTES
        for index, url in enumerate(request.params.style_reference_urls):
            data = self._references.fetch(url, timeout, left)
            left -= len(data)
            parts.append(file_part("style_reference_images", f"style_reference_{index}", data))
        return parts

    def _submitter(self, request: ReframeRequest, key: str) -> Submit:
        fields = self.fields(request)
        headers = {"Api-Key": key, "Accept": "application/json"}
        # Built on the first attempt and kept: retries re-send without downloading the references again,
        # while a failed download (not kept) is retried like a failed call.
        parts: list[FilePart] = []

        def submit(timeout: Timeout) -> Ticket:
            if not parts:
                parts.extend(self.files(request, timeout))
            response, _ = self._post(self._url, key, timeout, data=fields, files=parts, headers=headers)
            url, seed = self._image_url(response)
            return Ticket(provider=self.name, result_url=url, seed=seed, expires_at=time.time() + RESULT_TTL_S)

        return submit

    def _collect(self, ticket: Ticket, request: ReframeRequest, key: str, timeout: Timeout) -> ReframeResult:
        # The URL is stored before this download: a failed download is fetched again, never generated again.
        data, content_type = fetch_result(ticket.result_url, request.resolution, self._session, timeout)
        return ReframeResult(body=data, content_type=content_type, seed=ticket.seed)

    @staticmethod
    def _image_url(response: requests.Response) -> tuple[str, int | None]:
        """The result URL and seed of the one image asked for; an unsafe image is a verdict, not a glitch."""
        try:
            document = response.json()
        except ValueError:
            raise ProviderTransientError("provider answered malformed JSON", code="bad_body") from None
        data = document.get("data") if isinstance(document, dict) else None
        item = data[0] if isinstance(data, list) and data and isinstance(data[0], dict) else {}
        if item.get("is_image_safe") is False:
            raise ProviderRejectedError(
                "Ideogram flagged the result as unsafe and withheld it", code="unsafe_image", status=200
            )
        url = item.get("url")
        if not isinstance(url, str) or not url.startswith(("https://", "http://")):
            raise ProviderTransientError(
                f"provider answered JSON without an image URL: {json.dumps(document)[:200]}", code="bad_body"
            )
        seed = item.get("seed")
        return url, seed if isinstance(seed, int) else None
