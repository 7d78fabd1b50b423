"""Notices POSTed to WEBHOOK_URL, signed per Standard Webhooks (README, "Downstream integration"), with the
provider calls' deadline-clamped timeouts, retries and backoff. A webhook that fails is logged and counted, never a
reason to fail or repeat the work."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime

import requests
from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError
from standardwebhooks import Webhook

from reframe_pipeline.adapters.providers.limiter import AimdLimiter
from reframe_pipeline.adapters.providers.responses import classify
from reframe_pipeline.adapters.providers.retrying import CallPlan, RetryPolicy, call_with_retries
from reframe_pipeline.adapters.providers.safe_fetch import check_public_url
from reframe_pipeline.adapters.providers.sessions import Timeout
from reframe_pipeline.application.deadline import Deadline
from reframe_pipeline.domain.errors import ReframeError
from reframe_pipeline.domain.notices import NoticeDetail
from reframe_pipeline.observability import count, logger


class WebhookNotifier:
    def __init__(
        self,
        url: str,
        secret: Callable[[], str],
        session: requests.Session,
        policy: RetryPolicy,
        reserve_ms: int,
        public_only: bool = True,
    ) -> None:
        self.url = url
        self._secret = secret
        self._session = session
        self._policy = policy
        self._reserve_ms = reserve_ms
        self._public_only = public_only
        self._limiter = AimdLimiter()  # its own: a slow receiver must not narrow the provider's calls

    def publish(self, detail: NoticeDetail, deadline: Deadline) -> None:
        kind = "reframe.variants.removed" if detail.status == "removed" else "reframe.variants.ready"
        body = json.dumps(
            {"type": kind, "timestamp": datetime.now(UTC).isoformat(), "data": detail.model_dump(mode="json")}
        )
        plan = CallPlan(
            self._policy,
            deadline,
            self._reserve_ms,
            self._reserve_ms,
            provider="webhook",
            retries_metric="WebhookRetries",
            throttled_metric=None,  # a receiver's 429s are counted in WebhookRetries, not as the provider's
        )
        try:
            if self._public_only:  # resolved now: a public-looking name may point into a private network
                check_public_url(self.url)
            signer = Webhook(self._secret())  # read once per notice, before the first attempt
            call_with_retries(lambda timeout: self._send(signer, detail.event_id, body, timeout), plan, self._limiter)
        except (ReframeError, ValueError, OSError, GetParameterError) as exc:  # a secret unread: the notice only
            logger.error("webhook not delivered", extra={"event_id": detail.event_id, "error": str(exc)})
            count("WebhookFailures")
            return
        logger.info("webhook delivered", extra={"event_id": detail.event_id})

    def _send(self, signer: Webhook, message_id: str, body: str, timeout: Timeout) -> None:
        # The event_id is the message id: a receiver de-duplicates redeliveries and retries alike.
        now = datetime.now(UTC)
        headers = {
            "content-type": "application/json",
            "webhook-id": message_id,
            "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": signer.sign(message_id, now, body),
        }
        response = self._session.post(
            self.url, data=body.encode(), headers=headers, timeout=timeout, allow_redirects=False
        )
        if not 200 <= response.status_code < 300:
            raise classify(response, None)
