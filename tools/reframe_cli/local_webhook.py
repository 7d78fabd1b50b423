"""``--webhook URL`` of ``reframe demo`` and ``reframe serve``: the handler in this process POSTs each notice to
URL, signed per Standard Webhooks, as the deployed function does."""

from __future__ import annotations

import base64
import os
import secrets
from urllib.parse import urlsplit

from pydantic import ValidationError

from reframe_pipeline.settings import Settings

from .errors import UserError

# The rule the settings apply (WEBHOOK_URL, WEBHOOK_ALLOW_LOOPBACK_FOR_TESTS), said in full.
RULE = (
    "a webhook is an https URL; only these local commands also take a receiver on this machine as plain http at"
    " the loopback address itself, http://127.0.0.1:PORT/PATH (not a name such as localhost, which is resolved"
    " when sending and could lead elsewhere); a deployed function takes https only"
)


def post_notices_to(url: str) -> str:
    """Set the handler's webhook settings; returns the secret a receiver verifies with (WEBHOOK_SECRET when the
    shell has one, else a new one). An ``http://127.0.0.1`` receiver is allowed here, explicitly, by the setting
    the deployed function refuses (settings.py): the https and public-address checks stay for everything else.
    A URL the settings would refuse is refused here, before anything starts."""
    secret = os.environ.get("WEBHOOK_SECRET") or "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
    loopback = urlsplit(url).scheme == "http"
    try:  # only the webhook's settings: the rest are checked where the command reads them
        Settings.model_validate(
            {"webhook_url": url, "webhook_secret": secret, "webhook_allow_loopback_for_tests": loopback}
        )
    except ValidationError:
        raise UserError(f"--webhook {url}: refused: {RULE}") from None
    os.environ.update(WEBHOOK_URL=url, WEBHOOK_SECRET=secret)
    if loopback:
        os.environ["WEBHOOK_ALLOW_LOOPBACK_FOR_TESTS"] = "true"
    return secret


def describe(url: str, secret: str) -> str:
    return f"webhook: each notice POSTed to {url}, signed; verify with WEBHOOK_SECRET={secret}"
