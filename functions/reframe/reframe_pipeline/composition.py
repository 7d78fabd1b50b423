"""The one place that chooses adapters: S3, DynamoDB (guard, journal, budget), the provider, the notifier and the
signer, built from the settings and handed to the application. Used by the Lambda handler and the command line."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from pydantic import SecretStr

from reframe_pipeline.adapters import aws
from reframe_pipeline.adapters.daily_budget import DailyBudget, Unlimited
from reframe_pipeline.adapters.dynamodb_guard import DynamoDBGuard, NoGuard
from reframe_pipeline.adapters.eventbridge import EventBridgeNotifier
from reframe_pipeline.adapters.journal import DynamoDBJournal, MemoryJournal
from reframe_pipeline.adapters.providers import build_fallback, build_provider, key_source, retry_policy
from reframe_pipeline.adapters.providers.sessions import pooled_session
from reframe_pipeline.adapters.webhook import WebhookNotifier
from reframe_pipeline.application.broadcast import Broadcast
from reframe_pipeline.application.pipeline import Pipeline
from reframe_pipeline.application.ports import ContentSigner, Notifier, Storage
from reframe_pipeline.settings import Settings


def build_notifier(settings: Settings) -> Notifier:
    notifiers: list[Notifier] = []
    if settings.event_bus_name:
        # Only with a bus: a cold start without one does not build an EventBridge client.
        notifiers.append(EventBridgeNotifier(settings.event_bus_name, aws.client("events")))
    if settings.webhook_url:
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


def build_pipeline(settings: Settings, storage_for: Callable[[str], Storage]) -> Pipeline:
    provider = build_provider(settings)
    notifier = build_notifier(settings)
    signer = build_signer(settings)
    fallback = build_fallback(settings)
    table = settings.idempotency_table
    if not table:  # local use: protection within the process, and the check of the bucket
        return Pipeline(
            settings,
            provider,
            storage_for,
            guard=NoGuard(),
            journal=MemoryJournal(),
            budget=Unlimited(),
            notifier=notifier,
            signer=signer,
            fallback=fallback,
        )
    dynamodb = aws.client("dynamodb")  # only with a table: a cold start without one does not build it
    limit = settings.daily_budget_usd
    return Pipeline(
        settings,
        provider,
        storage_for,
        guard=DynamoDBGuard(table, dynamodb),
        journal=DynamoDBJournal(table, dynamodb),
        budget=DailyBudget(table, limit, dynamodb) if limit is not None else Unlimited(),
        notifier=notifier,
        signer=signer,
        fallback=fallback,
    )
