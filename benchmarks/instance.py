"""One function instance of the scale figures, in a process of its own:
``python -m benchmarks.instance ENDPOINT QUEUE_URL QUEUE_ARN RETRY_DELAY_S``.

It runs in the environment of a process that ran ``point_handler_at`` (endpoint, provider settings), builds
the handler's clients, prints ``ready``, then takes SQS batches one at a time, as a Lambda instance does, until
SIGTERM. Then it prints, as JSON, its peak RSS in MB, the CPU seconds it used since it was ready and its
DynamoDB requests (those for the shared slots apart).
"""

from __future__ import annotations

import json
import os
import resource
import signal
import sys
import threading
from typing import Any

from reframe_cli.logs import handler_output_to
from reframe_local.moto_stack import CONTEXT_TIMEOUT_S
from reframe_local.poller import Poller
from reframe_local.servers import client
from reframe_pipeline import handler
from reframe_pipeline.adapters import aws

from .stack import peak_rss_mb


def main(argv: list[str]) -> None:
    endpoint, queue_url, queue_arn, retry_delay_s = argv
    # Blocked before the poller's threads start, so that only sigwait below receives it.
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
    requests = DynamoDBRequests()
    aws.session().events.register("before-parameter-build.dynamodb", requests.count)  # before the clients are built
    with open(os.devnull, "w") as devnull, handler_output_to(devnull):  # logs and metrics: not measured here
        handler.pipeline()  # a cold start is not what the scale figures measure
        poller = Poller(
            client("sqs", endpoint),
            queue_url,
            queue_arn,
            handler.lambda_handler,
            context_timeout_s=CONTEXT_TIMEOUT_S,
            retry_delay_s=int(retry_delay_s),
        )
        poller.start()
        ready_cpu_s = _cpu_s()
        print("ready", file=sys.__stdout__, flush=True)
        signal.sigwait({signal.SIGTERM})
        poller.stop()
    usage = {
        "rss_mb": peak_rss_mb(),
        "cpu_s": _cpu_s() - ready_cpu_s,
        **requests.counts,
    }
    print(json.dumps(usage), flush=True)


class DynamoDBRequests:
    """The instance's DynamoDB requests: those for the shared slots (PROVIDER_MAX_IN_FLIGHT), and all."""

    def __init__(self) -> None:
        self.counts = {"dynamodb": 0, "slot_requests": 0}
        self._lock = threading.Lock()  # the handler's threads make requests at once

    def count(self, params: dict[str, Any], **_: Any) -> None:
        """botocore's ``before-parameter-build`` event: one request about to be built from ``params``."""
        # A slot's own reads and writes name it in Key; the waiters' looks read every slot at once.
        keys = [params.get("Key", {})] + [k for t in params.get("RequestItems", {}).values() for k in t.get("Keys", [])]
        slot = any(str(key.get("id", {}).get("S", "")).startswith("slot#") for key in keys)
        with self._lock:
            self.counts["dynamodb"] += 1
            self.counts["slot_requests"] += slot


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


if __name__ == "__main__":
    main(sys.argv[1:])
