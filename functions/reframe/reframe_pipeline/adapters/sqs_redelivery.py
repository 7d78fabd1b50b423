"""Records handed back to SQS come back soon, and sooner than a provider discards a paid result.

Left alone, a failed record reappears only after the queue's visibility timeout (6 x the function
timeout + 30 s: 30.5 minutes at 300 s), longer than Segmind keeps an async result (one hour) after a
second failure, and a throttled banner waits half an hour. Each failed record gets a visibility of its
own instead, growing with its receive count and capped well below the providers' retention."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from reframe_pipeline.adapters import aws
from reframe_pipeline.observability import count, logger

# The longest a record waits: a stored ticket (Segmind: one hour) is still alive when it returns.
MAX_DELAY_S = 900


def delay_s(receive_count: int, base_s: int) -> int:
    """``base_s`` after the first receive, doubling with each further one, at most MAX_DELAY_S."""
    return min(MAX_DELAY_S, base_s * 2 ** max(0, receive_count - 1))


def queue_url(arn: str) -> str:
    """The queue's URL from its ARN (``arn:aws:sqs:<region>:<account>:<name>``): no lookup, no permission."""
    _, partition, _, region, account, name = arn.split(":", 5)
    domain = "amazonaws.com.cn" if partition == "aws-cn" else "amazonaws.com"
    return f"https://sqs.{region}.{domain}/{account}/{name}"


def hand_back(
    records: Iterable[dict[str, Any]], failed_ids: set[str], base_s: int, waits: Mapping[str, int] | None = None
) -> None:
    """Give each failed record of the batch its own visibility: ``waits`` (by message id) for a record that said
    when to come back (an image waiting for its sidecar), else growing with its receives. A failure here is
    logged, not raised: the record then returns after the queue's own visibility timeout, as it would without this."""
    waits = waits or {}
    by_queue: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for record in records:
        message_id = record["messageId"]
        if message_id in failed_ids:
            receives = int(record.get("attributes", {}).get("ApproximateReceiveCount", "1"))
            by_queue[record["eventSourceARN"]].append(
                {
                    "Id": str(len(by_queue[record["eventSourceARN"]])),
                    "ReceiptHandle": record["receiptHandle"],
                    "VisibilityTimeout": waits.get(message_id, delay_s(receives, base_s)),
                }
            )
    for arn, entries in by_queue.items():
        try:
            answer = aws.client("sqs").change_message_visibility_batch(QueueUrl=queue_url(arn), Entries=entries)
            refused = answer.get("Failed", [])
        except (BotoCoreError, ClientError) as exc:
            refused, reason = entries, str(exc)
        else:
            reason = "; ".join(f"{item.get('Code')}: {item.get('Message')}" for item in refused)
        if refused:
            logger.warning(
                "could not shorten the wait of failed records", extra={"count": len(refused), "error": reason}
            )
            count("RedeliveryDelayFailures", len(refused))
        count("RecordsHandedBack", len(entries) - len(refused))
