"""What a provider's answer means: an error classified (transient, account, refused; billed or not), or an
image checked and decoded from the body, from JSON, or from a result URL fetched at once."""

from __future__ import annotations

import base64
import binascii
import json

import requests
from urllib3.util.retry import Retry

from reframe_pipeline.adapters.providers.sessions import Timeout
from reframe_pipeline.domain.errors import (
    DeadlineError,
    ProviderAccountError,
    ProviderError,
    ProviderRejectedError,
    ProviderTransientError,
)
from reframe_pipeline.domain.imaging import FORMATS, ImageCheckError, WrongSizeError, verify
from reframe_pipeline.domain.resolutions import Size

TRANSIENT_STATUSES = frozenset({408, 429, 500, 502, 503, 504})


def is_transient(status: int) -> bool:
    """An HTTP status that may pass on its own: worth asking again."""
    return status in TRANSIENT_STATUSES or status >= 500


# Account conditions (key, permissions, credits: Segmind's 406, Ideogram's 402): wait, alarm, come back.
ACCOUNT_STATUSES = frozenset({401, 402, 403, 404, 406})
_MEDIA_HEADERS = ("x-request-id", "x-credits-consumed", "x-remaining-credits", "x-rate-limit-remaining")


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


def media_headers(response: requests.Response) -> dict[str, str]:
    return {name: response.headers[name] for name in _MEDIA_HEADERS if name in response.headers}
