"""Building the provider adapters: the key sources, the retry policy, the call limiter of MAX_PARALLEL_CALLS,
the account's shared slots, the provider itself and its fallback."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypedDict

import requests
from pydantic import SecretStr

from reframe_pipeline.adapters import aws
from reframe_pipeline.adapters.providers.limiter import AimdLimiter
from reframe_pipeline.adapters.providers.retrying import RetryPolicy
from reframe_pipeline.adapters.providers.sessions import pooled_session
from reframe_pipeline.adapters.providers.shared_slots import SharedSlots
from reframe_pipeline.application.ports import ReframeProvider
from reframe_pipeline.domain.errors import AccountError
from reframe_pipeline.settings import Settings


def key_source(direct: SecretStr | None, secret_name: str | None, provider: str) -> Callable[[], str]:
    """The key itself (local use), else a Secrets Manager secret read when needed."""
    secrets = None
    if secret_name and not direct:
        from aws_lambda_powertools.utilities.parameters import SecretsProvider

        # Built here, in one thread, on the process's session: Powertools' default provider builds a session of
        # its own, and the first calls, in parallel, would each build one.
        secrets = SecretsProvider(boto3_client=aws.client("secretsmanager"))

    def key() -> str:
        if direct:
            return direct.get_secret_value()
        if secrets is not None and secret_name:
            # Cached for 5 minutes: a rotated key is picked up without a redeploy.
            return str(secrets.get(secret_name, max_age=300))
        raise AccountError(
            f"no API key for {provider}: set {provider.upper()}_API_KEY or {provider.upper()}_API_KEY_SECRET",
            code="missing_api_key",
        )

    return key


class _Transport(TypedDict):
    """What every remote provider takes besides its URL and key."""

    session: requests.Session
    policy: RetryPolicy
    min_remaining_ms: int
    reserve_ms: int
    limiter: AimdLimiter
    slots: SharedSlots | None


def _shared_slots(settings: Settings) -> SharedSlots | None:
    """The account's limit across all instances, when PROVIDER_MAX_IN_FLIGHT is set (in the table)."""
    if settings.provider_max_in_flight is None or not settings.idempotency_table:
        return None
    return SharedSlots(
        settings.idempotency_table, settings.reframe_provider, settings.provider_max_in_flight, aws.client("dynamodb")
    )


def retry_policy(settings: Settings) -> RetryPolicy:
    return RetryPolicy(
        max_attempts=settings.max_attempts,
        base_s=settings.backoff_base_s,
        max_s=settings.backoff_max_s,
        connect_timeout_s=settings.connect_timeout_s,
        read_timeout_s=settings.read_timeout_s,
    )


def _transport(settings: Settings) -> _Transport:
    return {
        # One per process (the pipeline is built once per container): every call of every thread holds its slots.
        "limiter": AimdLimiter(settings.max_parallel_calls),
        "slots": _shared_slots(settings),
        "session": pooled_session(settings.max_parallel_calls),
        "policy": retry_policy(settings),
        "min_remaining_ms": settings.min_call_ms,
        "reserve_ms": settings.upload_reserve_ms,
    }


def build_fallback(settings: Settings) -> ReframeProvider | None:
    """The provider of variants the configured one failed for good (FALLBACK_PROVIDER); None when off."""
    if settings.fallback_provider == "local":
        from reframe_pipeline.adapters.providers.local import LocalProvider

        return LocalProvider()
    return None


def build_provider(settings: Settings) -> ReframeProvider:
    if settings.reframe_provider == "local":
        from reframe_pipeline.adapters.providers.local import LocalProvider

        return LocalProvider()
    if settings.reframe_provider == "ideogram":
        from reframe_pipeline.adapters.providers.ideogram import IdeogramProvider
        from reframe_pipeline.adapters.s3_storage import s3_client

        return IdeogramProvider(
            url=settings.ideogram_api_url,
            api_key=key_source(settings.ideogram_api_key, settings.ideogram_api_key_secret, "ideogram"),
            # Object-key style references arrive as presigned URLs of this endpoint (on AWS they may name the
            # global S3 host instead, which then passes the public-address check like any public URL).
            storage_endpoint=s3_client().meta.endpoint_url,
            **_transport(settings),
        )
    from reframe_pipeline.adapters.providers.segmind import SegmindProvider

    return SegmindProvider(
        mode=settings.segmind_api_mode,
        url=settings.segmind_api_url,
        api_key=key_source(settings.segmind_api_key, settings.segmind_api_key_secret, "segmind"),
        **_transport(settings),
    )
