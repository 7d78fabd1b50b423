"""Logger, metrics and tracer (Powertools), set up once. The tracer is built lazily: creating it
imports the X-Ray SDK (~100 ms), which a cold start should only pay when tracing is on."""

from __future__ import annotations

import os
import threading
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


def count(name: str, value: float = 1, unit: str = MetricUnit.Count.value) -> None:
    with _metrics_lock:
        metrics.add_metric(name=name, unit=unit, value=value)


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
