"""Lambda's SQS event source mapping, played locally: receive batches, call the handler, delete what
succeeded and hand the rest back to the queue (ReportBatchItemFailures semantics)."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from .lambda_context import LocalContext
from .servers import REGION

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]

BATCH_SIZE = 10  # SQS's maximum per receive, and Lambda's default batch size
WAIT_TIME_S = 1  # long poll: short enough that stop() returns quickly
# Kept on top of the handler's deadline before an unfinished message reappears, for the deletes.
_DELETE_MARGIN_S = 5
_ERROR_BACKOFF_S = 1.0


@dataclass(frozen=True)
class BatchReport:
    """One handler invocation: the SQS messages as received and the ids handed back to the queue."""

    messages: list[dict[str, Any]]
    failed: frozenset[str]
    started: float  # time.time() when the handler was called
    elapsed_s: float
    error: BaseException | None = field(default=None)


OnBatch = Callable[[BatchReport], None]


def lambda_event(messages: list[dict[str, Any]], queue_arn: str) -> dict[str, Any]:
    """The event Lambda builds from received SQS messages."""
    return {
        "Records": [
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": m.get("Attributes", {}),
                "messageAttributes": {
                    name: _lower_first_keys(value) for name, value in m.get("MessageAttributes", {}).items()
                },
                "md5OfBody": m["MD5OfBody"],
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": REGION,
            }
            for m in messages
        ]
    }


def _lower_first_keys(attribute: dict[str, Any]) -> dict[str, Any]:
    # The SQS API says "StringValue", the Lambda event "stringValue".
    return {key[:1].lower() + key[1:]: value for key, value in attribute.items()}


class Poller:
    """``workers`` threads, each receiving a batch and calling ``handler`` on it, until stop().

    A received message stays hidden for as long as the handler may run (as Lambda requires the
    visibility timeout to cover the function timeout), so a slow batch is never handed out twice.
    A failed message is made visible again ``retry_delay_s`` after its batch ended, and the queue's
    redrive policy moves it to the DLQ after enough receives.
    """

    def __init__(
        self,
        sqs: Any,
        queue_url: str,
        queue_arn: str,
        handler: Handler,
        *,
        workers: int = 1,
        context_timeout_s: float = 120.0,
        retry_delay_s: int = 10,
        on_batch: OnBatch | None = None,
    ) -> None:
        if workers < 1:
            raise ValueError("a poller needs at least one worker")
        self._sqs = sqs
        self._queue_url = queue_url
        self._queue_arn = queue_arn
        self._handler = handler
        self._workers = workers
        self._context_timeout_s = context_timeout_s
        self._retry_delay_s = retry_delay_s
        self._on_batch = on_batch
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        self._threads = [threading.Thread(target=self._run, name=f"poller-{index}") for index in range(self._workers)]
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        """Let each worker finish its current batch, then join them all. Safe to call twice."""
        self._stop.set()
        for thread in self._threads:
            thread.join()
        self._threads = []

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                report = self.poll_once()
            except (BotoCoreError, ClientError) as exc:
                report = BatchReport([], frozenset(), time.time(), 0.0, error=exc)
                self._stop.wait(_ERROR_BACKOFF_S)
            if report is not None and self._on_batch is not None:
                self._on_batch(report)

    def poll_once(self) -> BatchReport | None:
        """Receive one batch and process it; None when the queue stayed empty for the long poll."""
        messages = self._sqs.receive_message(
            QueueUrl=self._queue_url,
            MaxNumberOfMessages=BATCH_SIZE,
            WaitTimeSeconds=WAIT_TIME_S,
            VisibilityTimeout=math.ceil(self._context_timeout_s) + _DELETE_MARGIN_S,
            MessageSystemAttributeNames=["All"],
            MessageAttributeNames=["All"],
        ).get("Messages", [])
        if not messages:
            return None
        started, clock = time.time(), time.monotonic()
        error: BaseException | None = None
        try:
            result = self._handler(
                lambda_event(messages, self._queue_arn), LocalContext(timeout_s=self._context_timeout_s)
            )
            failed = frozenset(item["itemIdentifier"] for item in result.get("batchItemFailures", []))
        except Exception as exc:  # as in Lambda, a raising handler fails the whole batch
            error = exc
            failed = frozenset(m["MessageId"] for m in messages)
        elapsed = time.monotonic() - clock
        self._settle(messages, failed)
        return BatchReport(messages, failed, started, elapsed, error)

    def _settle(self, messages: list[dict[str, Any]], failed: frozenset[str]) -> None:
        done = [m for m in messages if m["MessageId"] not in failed]
        retry = [m for m in messages if m["MessageId"] in failed]
        if done:
            self._sqs.delete_message_batch(
                QueueUrl=self._queue_url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done)],
            )
        if retry:
            self._sqs.change_message_visibility_batch(
                QueueUrl=self._queue_url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": self._retry_delay_s}
                    for i, m in enumerate(retry)
                ],
            )
