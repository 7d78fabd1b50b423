"""Ideogram's own Reframe API: the source and style references uploaded as files (multipart), a JSON answer
whose image URL expires (fetched at once), and a per-image safety verdict."""

from __future__ import annotations

import json
import time
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests

from ..errors import PermanentError, ProviderRejectedError, ProviderTransientError
from ..imaging import FORMATS, PROVIDER_FORMATS, sniff
from ..ports import ReframeRequest, ReframeResult, Ticket
from ..sidecar import check_public_url
from .http import TRANSIENT_STATUSES, RemoteProvider, Submit, Timeout, fetch_result

# Ideogram's limit on the style reference images together, not per file (its OpenAPI: 10 MB in total),
# read as the smaller of 10 MB and 10 MiB.
MAX_REFERENCES_BYTES = 10_000_000
MAX_REDIRECTS = 3
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
        self._storage = urlsplit(storage_endpoint)

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
            data = self._fetch(url, timeout, left)
            left -= len(data)
            parts.append(file_part("style_reference_images", f"style_reference_{index}", data))
        return parts

    def _fetch(self, url: str, timeout: Timeout, limit: int) -> bytes:
        """A style reference's bytes, refused once over ``limit`` (what the earlier ones left of the total).

        Object keys reach us as presigned URLs of our own storage, trusted as they are: with a local S3
        stand-in they point at a private address on purpose. The provider only sees URLs, so "ours" means
        served by the S3 endpoint in use; a user's URL naming that endpoint gets no credentials and reads
        only what is public there anyway. Any other URL came from a sidecar and may point anywhere: each hop
        is resolved and must be public before it is requested, so redirects are followed by hand. A name
        re-resolved to another address between check and request (DNS rebinding) is not caught."""
        for _ in range(MAX_REDIRECTS + 1):
            if not self._ours(url):
                self._check_public(url)
            with self._session.get(url, timeout=timeout, stream=True, allow_redirects=False) as response:
                if response.is_redirect:
                    url = urljoin(url, response.headers["Location"])
                    continue
                return self._reference_body(response, limit)
        raise PermanentError(f"style reference: more than {MAX_REDIRECTS} redirects", code="bad_style_reference")

    def _ours(self, url: str) -> bool:
        """Served by the S3 endpoint in use: its host, or a bucket subdomain of it (virtual-hosted URLs)."""
        parts, storage = urlsplit(url), self._storage
        host, storage_host = parts.hostname or "", storage.hostname or ""
        try:
            port = parts.port
        except ValueError:  # a malformed port: not ours, and the public check refuses it
            return False
        return (
            (parts.scheme, port) == (storage.scheme, storage.port)
            and bool(storage_host)
            and (host == storage_host or host.endswith("." + storage_host))
        )

    @staticmethod
    def _check_public(url: str) -> None:
        host = urlsplit(url).hostname
        try:
            check_public_url(url)
        except ValueError as exc:
            raise PermanentError(f"style reference refused: {exc}", code="bad_style_reference") from None
        except OSError:
            raise ProviderTransientError(f"style reference host {host!r} did not resolve", code="network") from None

    @staticmethod
    def _reference_body(response: requests.Response, limit: int) -> bytes:
        status = response.status_code
        if status in TRANSIENT_STATUSES or status >= 500:
            raise ProviderTransientError(f"style reference answered HTTP {status}", code="style_reference_fetch")
        if status != 200:
            raise PermanentError(f"style reference answered HTTP {status}", code="bad_style_reference")
        body = bytearray()
        for chunk in response.iter_content(1 << 16):
            body += chunk
            if len(body) > limit:
                raise PermanentError(
                    f"style references are over Ideogram's limit of {MAX_REFERENCES_BYTES} bytes in total",
                    code="bad_style_reference",
                )
        return bytes(body)

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
