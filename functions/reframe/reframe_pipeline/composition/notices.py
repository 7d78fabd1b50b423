"""Building the adapters around a finished variant: the notifiers told when a source's work ends (EventBridge,
a webhook) and the C2PA signer, each only when its setting asks for it."""

from __future__ import annotations

from pathlib import Path

from pydantic import SecretStr

from reframe_pipeline.adapters import aws
from reframe_pipeline.adapters.providers.sessions import pooled_session
from reframe_pipeline.application.broadcast import Broadcast
from reframe_pipeline.application.ports import ContentSigner, Notifier
from reframe_pipeline.composition.providers import key_source, retry_policy
from reframe_pipeline.settings import Settings


def build_notifier(settings: Settings) -> Notifier:
    notifiers: list[Notifier] = []
    # Each adapter imported only when its setting is on: a cold start without a webhook does not load
    # standardwebhooks, nor one without a bus the EventBridge client.
    if settings.event_bus_name:
        from reframe_pipeline.adapters.eventbridge import EventBridgeNotifier

        notifiers.append(EventBridgeNotifier(settings.event_bus_name, aws.client("events")))
    if settings.webhook_url:
        from reframe_pipeline.adapters.webhook import WebhookNotifier

        notifiers.append(
            WebhookNotifier(
                settings.webhook_url,
                key_source(settings.webhook_secret, settings.webhook_secret_arn, "webhook"),
                pooled_session(2),
                retry_policy(settings),
                reserve_ms=settings.upload_reserve_ms,
                public_only=not settings.webhook_allow_loopback_for_tests,
            )
        )
    return Broadcast(*notifiers)


def build_signer(settings: Settings) -> ContentSigner | None:
    if settings.c2pa_signing == "off":
        return None
    # Only with signing on: the adapter is where c2pa (a 23 MB native library) is loaded.
    from reframe_pipeline.adapters.c2pa_signer import C2paSigner

    local = settings.c2pa_signer_file
    return C2paSigner(
        key_source(SecretStr(Path(local).read_text()) if local else None, settings.c2pa_signer_secret_arn, "c2pa")
    )
