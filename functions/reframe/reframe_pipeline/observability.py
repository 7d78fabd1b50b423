"""Logger, metrics and tracer (Powertools), set up once. The tracer is built lazily: creating it
imports the X-Ray SDK (~100 ms), which a cold start should only pay when tracing is on."""

from __future__ import annotations

import os
import threading
from contextlib import AbstractContextManager, nullcontext
from functools import cache
from typing import TYPE_CHECKING

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

if TYPE_CHECKING:
    from aws_lambda_powertools import Tracer

SERVICE = os.environ.get("POWERTOOLS_SERVICE_NAME", "reframe")
NAMESPACE = os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "ReframePipeline")

logger = Logger(service=SERVICE)
metrics = Metrics(namespace=NAMESPACE, service=SERVICE)
_metrics_lock = threading.Lock()  # provider calls run in threads; the metric set is shared


def count(name: str, value: float = 1) -> None:
    """How many times something happened."""
    measure(name, value, MetricUnit.Count)


def measure(name: str, value: float, unit: MetricUnit) -> None:
    """A quantity: a latency, a cost, a size."""
    with _metrics_lock:
        metrics.add_metric(name=name, unit=unit, value=value)


def traced(name: str) -> AbstractContextManager[object]:
    """An X-Ray subsegment around a slow step (the provider call, the upload) when tracing is on."""
    active = tracer()
    return active.provider.in_subsegment(name) if active else nullcontext()


def tracing_enabled() -> bool:
    return os.environ.get("POWERTOOLS_TRACE_DISABLED", "").lower() not in ("1", "true") and bool(
        os.environ.get("AWS_LAMBDA_FUNCTION_NAME")
    )


@cache
def tracer() -> Tracer | None:
    if not tracing_enabled():
        return None
    from aws_lambda_powertools import Tracer

    return Tracer(service=SERVICE)
