"""When a record goes back to SQS: transient failures are retried later with the manifest written, permanent ones not. In-memory ports only (tests/unit/fakes.py and orchestration_harness.py)."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from reframe_pipeline.application.pipeline import RetryLaterError
from reframe_pipeline.domain.errors import (
    ProviderRejectedError,
    ProviderTransientError,
)
from tests.unit.fakes import FakeProvider
from tests.unit.orchestration_harness import MANIFEST, OUT, TARGETS


def test_a_transient_failure_is_retried_later_with_the_manifest_written(make: Any) -> None:
    h = make(provider=FakeProvider([None, ProviderTransientError("busy", status=503)]), max_parallel_calls=1)
    h.upload(targets=TARGETS[:2])
    with pytest.raises(RetryLaterError, match=r"1 variant\(s\) to retry: 512x1536"):
        h.handle()
    manifest = h.manifest()
    assert h.statuses() == {"1536x512": "created", "512x1536": "failed"}
    assert manifest["variants"][1]["error"] == {"code": "provider_transient", "message": "busy"}
    assert h.outputs() == [OUT + "1536x512.png", MANIFEST]

    outcome = h.handle()  # the redelivery pays for the failed variant only
    assert [r.status for r in outcome.records] == ["existing", "created"]
    assert h.provider.calls == 3


def test_a_permanent_failure_is_not_retried(make: Any) -> None:
    h = make(provider=FakeProvider([ProviderRejectedError("unsafe", status=422)]))
    h.upload(targets=TARGETS[:1])
    outcome = h.handle()
    assert outcome.action == "processed"
    assert h.statuses() == {"1536x512": "failed"}
    assert outcome.records[0].error is not None
    assert outcome.records[0].error.code == "provider_rejected"


def test_an_unexpected_error_is_retried_later_and_named(make: Any) -> None:
    h = make(provider=FakeProvider([RuntimeError("boom")]))
    h.upload(targets=TARGETS[:1])
    with pytest.raises(RetryLaterError):
        h.handle()
    assert h.manifest()["variants"][0]["error"] == {"code": "internal", "message": "RuntimeError: boom"}


@pytest.mark.parametrize(
    ("failure", "level", "code", "retryable"),
    [
        (ProviderTransientError("busy", status=503), "ERROR", "provider_transient", True),
        (ProviderRejectedError("unsafe", status=422), "WARNING", "provider_rejected", False),
    ],
)
def test_a_failed_variant_is_logged_with_its_code(
    make: Any, caplog: pytest.LogCaptureFixture, failure: Exception, level: str, code: str, retryable: bool
) -> None:
    h = make(provider=FakeProvider([failure]))
    h.upload(targets=TARGETS[:1])
    with caplog.at_level(logging.INFO):
        try:
            h.handle()
        except RetryLaterError:
            assert retryable
    (record,) = [r for r in caplog.records if r.getMessage() == "variant failed"]
    assert record.levelname == level
    assert (record.error_code, record.error, record.retryable) == (code, str(failure), retryable)  # type: ignore[attr-defined]


def test_a_run_logs_its_counts_and_every_variant_to_retry(make: Any, caplog: pytest.LogCaptureFixture) -> None:
    h = make(max_parallel_calls=1)
    h.upload(targets=TARGETS)
    h.handle()
    h.sidecar(targets=[*TARGETS, "1408x576"])
    h.clock.remaining_ms = 1000
    with caplog.at_level(logging.INFO), pytest.raises(RetryLaterError) as caught:
        h.handle()
    assert caught.value.message == "1 variant(s) to retry: 1408x576"
    done = [r for r in caplog.records if r.getMessage() == "source done"][-1]
    assert (done.variants_created, done.variants_existing, done.variants_failed) == (0, 3, 1)  # type: ignore[attr-defined]
    h.sidecar(targets=["1408x576", "576x1408"])
    with pytest.raises(RetryLaterError, match=r"^2 variant\(s\) to retry: 1408x576, 576x1408$"):
        h.handle()
    failed = h.manifest()["variants"][0]
    assert failed["error"] == {"code": "deadline", "message": "not started: too little time left in this invocation"}
