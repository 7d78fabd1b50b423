"""The one place that builds adapters: S3, DynamoDB (guard, journal, budget), the provider and its fallback, the
notifiers and the signer, built from the settings and handed to the application with its plain options. Used
by the Lambda handler and the command line."""

from __future__ import annotations

from collections.abc import Callable

from reframe_pipeline.adapters import aws
from reframe_pipeline.adapters.daily_budget import DailyBudget, Unlimited
from reframe_pipeline.adapters.dynamodb_guard import DynamoDBGuard, NoGuard
from reframe_pipeline.adapters.journal import DynamoDBJournal, MemoryJournal
from reframe_pipeline.adapters.optimizers import optimize
from reframe_pipeline.application.options import PipelineOptions
from reframe_pipeline.application.pipeline import Pipeline
from reframe_pipeline.application.ports import Budget, Journal, Storage, VariantGuard
from reframe_pipeline.application.source_matching import SourceCheckPolicy
from reframe_pipeline.composition.notices import build_notifier, build_signer
from reframe_pipeline.composition.providers import build_fallback, build_provider
from reframe_pipeline.settings import Settings


def pipeline_options(settings: Settings) -> PipelineOptions:
    """The settings the application reads, and nothing else (no key, no adapter choice)."""
    return PipelineOptions(
        input_prefix=settings.input_prefix,
        output_prefix=settings.output_prefix,
        style_prefix=settings.style_prefix,
        default_sidecar=settings.default_sidecar,
        sidecar_wait_s=settings.sidecar_wait_s,
        default_rendering_speed=settings.default_rendering_speed,
        max_sidecar_bytes=settings.max_sidecar_bytes,
        max_targets_per_object=settings.max_targets_per_object,
        presign_expiry_s=settings.presign_expiry_s,
        keep_generations=settings.generations_keep_days > 0,
        source_limits=settings.source_limits,
        max_parallel_calls=settings.max_parallel_calls,
        min_call_ms=settings.min_call_ms,
        price_table=settings.price_table,
        source_check=SourceCheckPolicy(settings.source_check, settings.source_match_min),
        output_bucket=settings.output_bucket,
        delivery=settings.delivery,
    )


def _records(settings: Settings) -> tuple[VariantGuard, Journal, Budget]:
    """The guard, the journal and the budget: in the table, or (local use, no table) in this process."""
    table = settings.idempotency_table
    if not table:  # protection within the process, and the check of the bucket
        return NoGuard(), MemoryJournal(), Unlimited()
    dynamodb = aws.client("dynamodb")  # only with a table: a cold start without one does not build it
    limit = settings.daily_budget_usd
    budget = DailyBudget(table, limit, dynamodb) if limit is not None else Unlimited()
    return DynamoDBGuard(table, dynamodb), DynamoDBJournal(table, dynamodb), budget


def build_pipeline(settings: Settings, storage_for: Callable[[str], Storage]) -> Pipeline:
    provider = build_provider(settings)
    notifier = build_notifier(settings)
    signer = build_signer(settings)
    fallback = build_fallback(settings)
    guard, journal, budget = _records(settings)
    return Pipeline(
        pipeline_options(settings),
        provider,
        storage_for,
        guard=guard,
        journal=journal,
        budget=budget,
        notifier=notifier,
        signer=signer,
        fallback=fallback,
        optimizer=optimize,
    )
