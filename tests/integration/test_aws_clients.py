"""The function's AWS clients come from one boto3 session per process (adapters/aws.py), the provider's key
from Secrets Manager included."""

from __future__ import annotations

import pytest

from reframe_local import servers
from reframe_pipeline import handler
from reframe_pipeline.adapters import aws, aws_limits
from reframe_pipeline.adapters.s3_storage import s3_client
from reframe_pipeline.application.ports import Deadline

from ..conftest import EMULATOR_API_KEY
from .conftest import Stack, s3_event, sqs_event
from .test_reliability import TABLE, create_idempotency_table
from .test_shared_slots import SIX


def test_the_key_is_read_from_secrets_manager(stack: Stack, aws_env: str, monkeypatch: pytest.MonkeyPatch):
    secrets = servers.client("secretsmanager", aws_env)
    arn = secrets.create_secret(Name="reframe-key", SecretString=EMULATOR_API_KEY)["ARN"]
    monkeypatch.delenv("SEGMIND_API_KEY")
    stack.configure(SEGMIND_API_KEY_SECRET=arn)
    stack.put_image("uploads/secret/a.jpg")
    stack.put("uploads/secret/a.jpg.reframe.json", SIX)

    assert stack.invoke(sqs_event(s3_event("uploads/secret/a.jpg"))) == {"batchItemFailures": []}
    assert stack.stats()["billed"] == 6


def test_every_client_comes_from_the_one_session(stack: Stack, aws_env: str):
    create_idempotency_table(servers.client("dynamodb", aws_env))
    stack.configure(IDEMPOTENCY_TABLE=TABLE, PROVIDER_MAX_IN_FLIGHT="2")
    handler.pipeline()
    built = aws.session()._session  # botocore's session: the loader of models and rules it holds is shared
    # The storage's client, and the table's client shared by the guard, the journal, the budget and the slots.
    assert s3_client()._loader is built.get_component("data_loader")
    assert aws.client("dynamodb")._loader is built.get_component("data_loader")

    handler.reset()  # a new container: a new session, read from the environment of the moment
    assert aws.session()._session is not built


def test_every_client_has_short_timeouts_and_few_attempts(stack: Stack, aws_env: str):
    create_idempotency_table(servers.client("dynamodb", aws_env))
    stack.configure(IDEMPOTENCY_TABLE=TABLE, PROVIDER_MAX_IN_FLIGHT="2", EVENT_BUS_NAME="bus")
    handler.pipeline()
    for client in (s3_client(), aws.client("dynamodb"), aws.client("events"), aws.client("secretsmanager")):
        config = client.meta.config
        assert (config.connect_timeout, config.read_timeout) == (
            aws_limits.CONNECT_TIMEOUT_S,
            aws_limits.READ_TIMEOUT_S,
        )
        assert config.retries == {"mode": "standard", "total_max_attempts": aws_limits.ATTEMPTS}


def test_a_call_within_a_deadline_starts_no_attempt_it_could_not_finish(stack: Stack):
    sent: list[str] = []
    client = aws.client("s3")
    client.meta.events.register("before-send", lambda request, **kwargs: sent.append(request.url))
    with aws.within(Deadline(lambda: aws_limits.ATTEMPT_MS - 1)), pytest.raises(aws.OutOfTime, match="ListBuckets"):
        client.list_buckets()
    assert sent == []  # nothing was sent
    with aws.within(Deadline(lambda: aws_limits.ATTEMPT_MS + 1_000)):
        client.list_buckets()
    assert len(sent) == 1
