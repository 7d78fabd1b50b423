"""What the remote providers share: one pooled HTTP session, retries with backoff and jitter that
honour Retry-After and the Lambda deadline, error classification, and response decoding."""

from __future__ import annotations

import base64
import binascii
import json
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from ..errors import (
    DeadlineError,
    ProviderAccountError,
    ProviderError,
    ProviderRejectedError,
    ProviderTransientError,
)
from ..imaging import FORMATS, ImageCheckError, verify
from ..observability import count, logger
from ..ports import Deadline, ReframeRequest, ReframeResult
from ..resolutions import Size
from .limiter import LIMITER, AimdLimiter

TRANSIENT_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
ACCOUNT_STATUSES = frozenset({401, 403, 404, 406})
_MEDIA_HEADERS = ("x-request-id", "x-credits-consumed", "x-remaining-credits", "x-rate-limit-remaining")


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
    status = response.status_code
    message = error_message(response, secret)
    if status in TRANSIENT_STATUSES or status >= 500:
        return ProviderTransientError(
            message,
            code=f"http_{status}",
            status=status,
            retry_after=retry_after_seconds(response.headers.get("Retry-After")),
        )
    if status in ACCOUNT_STATUSES:
        return ProviderAccountError(message, code=f"http_{status}", status=status)
    return ProviderRejectedError(message, code=f"http_{status}", status=status)


def checked_image(body: bytes, expected: Size) -> tuple[bytes, str]:
    """(bytes, content type) of a whole image of the expected size, else a transient error."""
    try:
        fmt, _ = verify(body, expected)
    except ImageCheckError as exc:
        raise ProviderTransientError(f"provider answered a broken image: {exc}", code="bad_image") from None
    return body, FORMATS[fmt].mime


def fetch_result(
    url: str, expected: Size, session: requests.Session, timeout: tuple[float, float]
) -> tuple[bytes, str]:
    """Download a result the provider left at a URL; call at once, such URLs expire."""
    fetched = session.get(url, timeout=timeout)
    if fetched.status_code != 200:
        raise ProviderTransientError(f"result URL answered HTTP {fetched.status_code}", code="result_fetch")
    return checked_image(fetched.content, expected)


def decode_image_response(
    response: requests.Response, expected: Size, session: requests.Session, timeout: tuple[float, float]
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


def call_with_retries(
    send: Callable[[], ReframeResult],
    *,
    policy: RetryPolicy,
    deadline: Deadline,
    min_remaining_ms: int,
    provider: str,
    limiter: AimdLimiter = LIMITER,
) -> ReframeResult:
    """Run ``send`` until it succeeds, fails for good, or retrying would overrun the deadline.
    ``send`` raises ProviderError subclasses (transient ones carry the Retry-After in .retry_after).
    Each attempt holds a slot of ``limiter``, which 429s narrow and successes widen."""
    attempt = 0
    while True:
        attempt += 1
        slot = limiter.acquire(timeout_s=max(0.0, (deadline.remaining_ms() - min_remaining_ms) / 1000))
        if slot is None:
            raise DeadlineError(f"no {provider} call slot came free before the deadline (calls throttled)")
        started = time.monotonic()
        throttled = succeeded = False
        try:
            result = send()
            succeeded = True
        except ProviderTransientError as exc:
            failure: ProviderTransientError = exc
            throttled = exc.status == 429
        except (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError) as exc:
            failure = ProviderTransientError(f"{type(exc).__name__} talking to {provider}", code="network")
        finally:
            lowered = limiter.release(slot, throttled=throttled, succeeded=succeeded)
        if lowered is not None:
            logger.warning("provider throttled: fewer calls in flight", extra={"concurrency_limit": lowered})
            count("ProviderConcurrencyLimit", lowered)
        if succeeded:
            return replace(result, attempts=attempt)
        elapsed_ms = int((time.monotonic() - started) * 1000)
        if attempt >= policy.max_attempts:
            raise failure
        ceiling = min(policy.max_s, policy.base_s * 2 ** (attempt - 1))
        delay = random.uniform(0, ceiling)  # noqa: S311 - jitter, not cryptography
        if failure.retry_after is not None:
            delay = failure.retry_after + random.uniform(0, min(1.0, ceiling))  # noqa: S311
        if deadline.remaining_ms() - delay * 1000 < min_remaining_ms:
            raise DeadlineError(
                f"{failure.message}; not retrying: the invocation would end before another attempt"
            ) from failure
        logger.warning(
            "provider call failed, retrying",
            extra={
                "attempt": attempt,
                "error_code": failure.code,
                "error": failure.message,
                "retry_in_s": round(delay, 2),
                "latency_ms": elapsed_ms,
            },
        )
        count("ProviderRetries")
        time.sleep(delay)


def media_headers(response: requests.Response) -> dict[str, str]:
    return {name: response.headers[name] for name in _MEDIA_HEADERS if name in response.headers}


class RemoteProvider:
    """What the HTTP providers share: endpoint, key, pooled session, retry policy, and one POST per attempt
    that is logged and classified the same way. Subclasses build the request and read the answer."""

    name = "remote"

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

    @property
    def timeout(self) -> tuple[float, float]:
        return (self._policy.connect_timeout_s, self._policy.read_timeout_s)

    def _post(self, key: str, **options: Any) -> tuple[requests.Response, dict[str, str]]:
        """One attempt: the answer and its provider headers, or the classified error (key scrubbed)."""
        started = time.monotonic()
        response = self._session.post(self._url, timeout=self.timeout, **options)
        meta = media_headers(response)
        latency_ms = int((time.monotonic() - started) * 1000)
        logger.debug("provider answered", extra={"status": response.status_code, "latency_ms": latency_ms, **meta})
        if response.status_code != 200:
            raise classify(response, key)
        return response, meta

    def _with_retries(self, send: Callable[[], ReframeResult], request: ReframeRequest) -> ReframeResult:
        return call_with_retries(
            send,
            policy=self._policy,
            deadline=request.deadline,
            min_remaining_ms=self._min_remaining_ms,
            provider=self.name,
        )
