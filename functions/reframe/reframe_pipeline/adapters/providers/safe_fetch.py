"""Fetching a user-given style reference safely: only public addresses, each redirect checked by hand,
at most what is left of Ideogram's total limit, and our own presigned storage URLs trusted as they are."""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urljoin, urlsplit

import requests

from reframe_pipeline.adapters.providers.responses import is_transient
from reframe_pipeline.adapters.providers.sessions import Timeout
from reframe_pipeline.domain.errors import PermanentError, ProviderTransientError
from reframe_pipeline.domain.sidecar import check_reference, require_public

# Ideogram's limit on the style reference images together, not per file (its OpenAPI: 10 MB in total),
# read as the smaller of 10 MB and 10 MiB.
MAX_REFERENCES_BYTES = 10_000_000
MAX_REDIRECTS = 3


def check_public_url(url: str) -> None:
    """Right before fetching a user-given reference URL: check_reference's rules, and every address its host
    resolves to now must be public too (a public-looking name may point into a private network).

    A name that does not exist is the user's error (ValueError); other resolver failures (socket.gaierror)
    may pass and are left to the caller's retries."""
    parts = urlsplit(check_reference(url))
    if not parts.hostname:
        raise ValueError(f"{url!r} is not an https URL")
    try:
        infos = socket.getaddrinfo(parts.hostname, parts.port or 443, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        if exc.errno == socket.EAI_NONAME:
            raise ValueError(f"host {parts.hostname!r} does not exist") from None
        raise
    for *_, sockaddr in infos:
        require_public(ipaddress.ip_address(sockaddr[0]))


class SafeFetcher:
    def __init__(self, session: requests.Session, storage_endpoint: str) -> None:
        self._session = session
        self._storage = urlsplit(storage_endpoint)

    def fetch(self, url: str, timeout: Timeout, limit: int) -> bytes:
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
        if is_transient(status):
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
