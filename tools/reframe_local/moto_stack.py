"""The local stack behind ``reframe demo`` and ``reframe serve``: moto (S3 + SQS + EventBridge) wired as the SAM
template wires AWS (bucket notifications on INPUT_PREFIX -> queue -> DLQ), and pollers calling the
real handler in this process. The handler's notices go to an EventBridge bus whose rule, like docs/notices.md's,
sends them to a queue the tools read."""

from __future__ import annotations

import json
import os
import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import servers
from .poller import OnBatch, Poller
from .servers import ServerProcess, StopsOnExit

DEFAULT_BUCKET = "reframe-local"
NOTICE_BUS = "reframe-local"
NOTICE_PATTERN = {"source": ["reframe.pipeline"]}
# The queue's visibility timeout. Deployed it is 6x the function timeout + 30 s; locally a failed
# record comes back after this short delay (the poller hides in-flight messages longer, see Poller).
RETRY_DELAY_S = 10
# Receives before the DLQ: fewer than the template's 5, so that a broken upload is dead-lettered
# within the demo's time limit.
MAX_RECEIVES = 3
CONTEXT_TIMEOUT_S = 120.0  # the handler's deadline (LocalContext), as a function timeout
_POLL_INTERVAL_S = 0.1


def wait_until(condition: Callable[[], bool], timeout_s: float) -> bool:
    """Poll ``condition`` until it holds (True) or ``timeout_s`` has passed (False)."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(_POLL_INTERVAL_S)
    return True


@dataclass(frozen=True)
class Wiring:
    bucket: str
    queue_url: str
    queue_arn: str
    dlq_url: str
    retry_delay_s: int  # the queue's visibility timeout: when a failed message comes back


def wire_bucket(
    s3: Any,
    sqs: Any,
    bucket: str,
    *,
    input_prefix: str,
    retry_delay_s: int = RETRY_DELAY_S,
    max_receives: int = MAX_RECEIVES,
    seed: Mapping[str, bytes] | None = None,
) -> Wiring:
    """Create the bucket, put ``seed`` objects (before any notification: they cause no event), the
    queue with its DLQ, and the bucket's notifications for created and removed objects under
    ``input_prefix``. Setting them makes S3 send one s3:TestEvent, which the handler skips."""
    s3.create_bucket(Bucket=bucket)
    for key, body in (seed or {}).items():
        s3.put_object(Bucket=bucket, Key=key, Body=body)
    dlq_url = sqs.create_queue(QueueName=f"{bucket}-dlq")["QueueUrl"]
    dlq_arn = _queue_arn(sqs, dlq_url)
    redrive = {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(max_receives)}
    queue_url = sqs.create_queue(
        QueueName=f"{bucket}-events",
        Attributes={"VisibilityTimeout": str(retry_delay_s), "RedrivePolicy": json.dumps(redrive)},
    )["QueueUrl"]
    queue_arn = _queue_arn(sqs, queue_url)
    s3.put_bucket_notification_configuration(
        Bucket=bucket,
        NotificationConfiguration={
            "QueueConfigurations": [
                {
                    "Id": "reframe-uploads",
                    "QueueArn": queue_arn,
                    "Events": ["s3:ObjectCreated:*", "s3:ObjectRemoved:*"],
                    "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": input_prefix}]}},
                }
            ]
        },
    )
    return Wiring(bucket, queue_url, queue_arn, dlq_url, retry_delay_s)


def create_idempotency_table(dynamodb: Any, name: str) -> None:
    """The table as template.yaml makes it: partition key ``id`` (idempotency records, journal, budget, slots)."""
    dynamodb.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )


def wire_notices(events: Any, sqs: Any, bus: str = NOTICE_BUS) -> str:
    """An EventBridge bus whose rule sends the pipeline's notices to a queue; returns the queue's URL. moto
    delivers during PutEvents: a notice is in the queue when the handler's invocation returns."""
    events.create_event_bus(Name=bus)
    queue_url: str = sqs.create_queue(QueueName=f"{bus}-notices")["QueueUrl"]
    events.put_rule(Name="notices", EventBusName=bus, EventPattern=json.dumps(NOTICE_PATTERN))
    target = {"Id": "queue", "Arn": _queue_arn(sqs, queue_url)}
    events.put_targets(Rule="notices", EventBusName=bus, Targets=[target])
    return queue_url


def _queue_arn(sqs: Any, url: str) -> str:
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]
    return str(attributes["QueueArn"])


def queue_depth(sqs: Any, queue_url: str) -> int:
    """Messages waiting or in flight: zero once every event was handled or dead-lettered."""
    attributes = sqs.get_queue_attributes(
        QueueUrl=queue_url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]) + int(attributes["ApproximateNumberOfMessagesNotVisible"])


def point_handler_at(endpoint_url: str) -> None:
    """Make the handler in this process use the local stack with the local provider unless told
    otherwise. boto3 reads these variables; the handler's cached settings and clients are rebuilt."""
    # A developer's shell settings would send the handler's calls elsewhere, or sign them with a real key.
    for name in [n for n in os.environ if n.startswith("AWS_ENDPOINT_URL_")]:
        del os.environ[name]
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
        os.environ.pop(name, None)
    os.environ.update(
        AWS_ENDPOINT_URL=endpoint_url,
        AWS_ACCESS_KEY_ID="test",
        AWS_SECRET_ACCESS_KEY="test",  # noqa: S106 - moto accepts any credentials
        AWS_DEFAULT_REGION=servers.REGION,
        AWS_REGION=servers.REGION,
    )
    os.environ.setdefault("REFRAME_PROVIDER", "local")
    os.environ["EVENT_BUS_NAME"] = NOTICE_BUS  # a shell's bus name would name none in moto
    # Powertools warns on stderr after an invocation that added no metric (a test event, a key it
    # ignores). In Lambda that line lands in the function's log; here it would clutter the terminal.
    warnings.filterwarnings("ignore", message="No application metrics to publish", category=UserWarning)
    from reframe_pipeline import handler

    handler.reset()


class MotoStack(StopsOnExit):
    """moto, wired. Start with MotoStack.start(), then start_pollers(); stop() (or ``with``) ends it all."""

    def __init__(self, moto: ServerProcess, wiring: Wiring, notice_queue_url: str) -> None:
        self.moto = moto
        self.wiring = wiring
        self.notice_queue_url = notice_queue_url
        self.s3 = moto.client("s3")
        self.sqs = moto.client("sqs")
        self.poller: Poller | None = None

    @classmethod
    def start(
        cls,
        log_dir: Path,
        *,
        bucket: str = DEFAULT_BUCKET,
        seed: Mapping[str, bytes] | None = None,
        retry_delay_s: int = RETRY_DELAY_S,
        max_receives: int = MAX_RECEIVES,
    ) -> MotoStack:
        """moto with the bucket, ``seed`` objects and queues, and the handler pointed at it."""
        from reframe_pipeline.settings import current

        moto = servers.start_moto(log_path=log_dir / "moto.log")
        try:
            point_handler_at(moto.url)
            wiring = wire_bucket(
                moto.client("s3"),
                moto.client("sqs"),
                bucket,
                input_prefix=current().input_prefix,
                retry_delay_s=retry_delay_s,
                max_receives=max_receives,
                seed=seed,
            )
            notice_queue_url = wire_notices(moto.client("events"), moto.client("sqs"))
        except BaseException:
            moto.stop()
            raise
        return cls(moto, wiring, notice_queue_url)

    def start_pollers(self, count: int = 1, on_batch: OnBatch | None = None) -> None:
        """``count`` poller threads calling the real handler."""
        from reframe_pipeline.handler import lambda_handler

        self.poller = Poller(
            self.sqs,
            self.wiring.queue_url,
            self.wiring.queue_arn,
            lambda_handler,
            workers=count,
            context_timeout_s=CONTEXT_TIMEOUT_S,
            retry_delay_s=self.wiring.retry_delay_s,
            on_batch=on_batch,
        )
        self.poller.start()

    @property
    def url(self) -> str:
        return self.moto.url

    def pending(self) -> int:
        return queue_depth(self.sqs, self.wiring.queue_url)

    def notices(self) -> list[dict[str, Any]]:
        """The EventBridge events delivered since the last call, oldest first as the queue hands them out."""
        found: list[dict[str, Any]] = []
        while True:
            messages = self.sqs.receive_message(QueueUrl=self.notice_queue_url, MaxNumberOfMessages=10).get(
                "Messages", []
            )
            if not messages:
                return found
            for message in messages:
                found.append(json.loads(message["Body"]))
                self.sqs.delete_message(QueueUrl=self.notice_queue_url, ReceiptHandle=message["ReceiptHandle"])

    def dead_letters(self) -> int:
        return queue_depth(self.sqs, self.wiring.dlq_url)

    def stop(self) -> None:
        """Pollers first (they finish their batch against a live moto), then moto, by its pid."""
        try:
            if self.poller is not None:
                self.poller.stop()
        finally:
            self.moto.stop()
