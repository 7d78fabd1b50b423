"""The one place that chooses adapters: S3, DynamoDB (guard, journal, budget) and the provider, built
from the settings and handed to the application. Used by the Lambda handler and the command line."""

from __future__ import annotations

from collections.abc import Callable

from .budget import DailyBudget, Unlimited
from .idempotency import DynamoDBGuard, NoGuard
from .journal import DynamoDBJournal, MemoryJournal
from .pipeline import Pipeline
from .ports import Storage
from .providers import build_provider
from .settings import Settings


def build_pipeline(settings: Settings, storage_for: Callable[[str], Storage]) -> Pipeline:
    provider = build_provider(settings)
    table = settings.idempotency_table
    if not table:  # local use: protection within the process, and the check of the bucket
        return Pipeline(settings, provider, storage_for, guard=NoGuard(), journal=MemoryJournal(), budget=Unlimited())
    import boto3  # only with a table: a cold start without one does not build a DynamoDB client

    dynamodb = boto3.session.Session().client("dynamodb")
    limit = settings.daily_budget_usd
    return Pipeline(
        settings,
        provider,
        storage_for,
        guard=DynamoDBGuard(table),
        journal=DynamoDBJournal(table, dynamodb),
        budget=DailyBudget(table, limit, dynamodb) if limit is not None else Unlimited(),
    )
