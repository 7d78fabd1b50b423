"""``--webhook URL`` of ``reframe demo`` and ``reframe serve``: the handler in this process POSTs each notice to
URL, signed per Standard Webhooks, as the deployed function does."""

from __future__ import annotations

import base64
import os
import secrets
from urllib.parse import urlsplit


def post_notices_to(url: str) -> str:
    """Set the handler's webhook settings; returns the secret a receiver verifies with (WEBHOOK_SECRET when the
    shell has one, else a new one). An ``http://127.0.0.1`` receiver is allowed here, explicitly, by the setting
    the deployed function refuses (settings.py): the https and public-address checks stay for everything else."""
    secret = os.environ.get("WEBHOOK_SECRET") or "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
    os.environ.update(WEBHOOK_URL=url, WEBHOOK_SECRET=secret)
    if urlsplit(url).scheme == "http":
        os.environ["WEBHOOK_ALLOW_LOOPBACK_FOR_TESTS"] = "true"
    return secret


def describe(url: str, secret: str) -> str:
    return f"webhook: each notice POSTed to {url}, signed; verify with WEBHOOK_SECRET={secret}"
