"""Provider adapters and the one place that chooses between them."""

from __future__ import annotations

from collections.abc import Callable

from ..errors import AccountError
from ..ports import ReframeProvider
from ..settings import Settings
from .http import RetryPolicy, pooled_session


def _key_source(direct: str | None, secret_name: str | None, provider: str) -> Callable[[], str]:
    def key() -> str:
        if direct:
            return direct
        if secret_name:
            from aws_lambda_powertools.utilities.parameters import get_secret

            # Cached for 5 minutes: a rotated key is picked up without a redeploy.
            return get_secret(secret_name, max_age=300)
        raise AccountError(
            f"no API key for {provider}: set {provider.upper()}_API_KEY or {provider.upper()}_API_KEY_SECRET",
            code="missing_api_key",
        )

    return key


def build_provider(settings: Settings) -> ReframeProvider:
    if settings.reframe_provider == "local":
        from .local import LocalProvider

        return LocalProvider()
    policy = RetryPolicy(
        max_attempts=settings.max_attempts,
        base_s=settings.backoff_base_s,
        max_s=settings.backoff_max_s,
        connect_timeout_s=settings.connect_timeout_s,
        read_timeout_s=settings.read_timeout_s,
    )
    session = pooled_session(settings.max_parallel_calls)
    from .segmind import SegmindProvider

    direct = settings.segmind_api_key.get_secret_value() if settings.segmind_api_key else None
    return SegmindProvider(
        url=settings.segmind_api_url,
        api_key=_key_source(direct, settings.segmind_api_key_secret, "segmind"),
        session=session,
        policy=policy,
        min_remaining_ms=settings.call_budget_ms + settings.upload_reserve_ms,
    )
