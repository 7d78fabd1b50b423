"""WEBHOOK_URL: https on a public host with a secret to sign with; http://127.0.0.1 only in tests and local runs
(`reframe demo/serve --webhook`), never in Lambda."""

from __future__ import annotations

import pytest
import requests

from reframe_pipeline.adapters.providers.retrying import RetryPolicy
from reframe_pipeline.adapters.webhook import WebhookNotifier
from reframe_pipeline.application.deadline import Deadline
from reframe_pipeline.domain.notices import removed
from reframe_pipeline.settings import Settings, SettingsError


@pytest.mark.parametrize(
    ("env", "problem"),
    [
        ({"WEBHOOK_URL": "https://hooks.example.com/r"}, "needs WEBHOOK_SECRET or WEBHOOK_SECRET_ARN"),
        ({"WEBHOOK_URL": "http://hooks.example.com/r", "WEBHOOK_SECRET": "whsec_eA=="}, "must be an https URL"),
        ({"WEBHOOK_URL": "http://127.0.0.1:9/r", "WEBHOOK_SECRET": "whsec_eA=="}, "must be an https URL"),
    ],
)
def test_a_wrong_webhook_setting_fails_at_start(env: dict[str, str], problem: str):
    with pytest.raises(SettingsError, match=problem):
        Settings.from_env(env)


def test_loopback_only_with_the_test_setting():
    env = {
        "WEBHOOK_URL": "http://127.0.0.1:9/r",
        "WEBHOOK_SECRET": "whsec_eA==",
        "WEBHOOK_ALLOW_LOOPBACK_FOR_TESTS": "1",
    }
    assert Settings.from_env(env).webhook_url == "http://127.0.0.1:9/r"
    with pytest.raises(SettingsError, match="must be an https URL"):
        Settings.from_env({**env, "WEBHOOK_URL": "http://10.0.0.1/r"})
    # Lambda always names its function: there the allowance is refused, with or without a webhook.
    for lambda_env in (
        {**env, "AWS_LAMBDA_FUNCTION_NAME": "reframe"},
        {"WEBHOOK_ALLOW_LOOPBACK_FOR_TESTS": "1", "AWS_LAMBDA_FUNCTION_NAME": "reframe"},
    ):
        with pytest.raises(SettingsError, match="for local runs: a Lambda function refuses it"):
            Settings.from_env(lambda_env)


class NoNetwork(requests.Session):
    def request(self, *args: object, **kwargs: object) -> requests.Response:
        raise AssertionError("nothing may be sent to a private address")


def test_a_private_address_is_never_posted_to(caplog: pytest.LogCaptureFixture):
    notifier = WebhookNotifier("https://10.0.0.1/r", lambda: "whsec_eA==", NoNetwork(), RetryPolicy(), reserve_ms=0)
    notifier.publish(removed("b", "uploads/x.png", "reframed/x.png/manifest.json", [], "c"), Deadline())
    assert "webhook not delivered" in caplog.text
