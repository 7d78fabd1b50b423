"""FALLBACK_PROVIDER=local: a variant the provider failed for good is made by the local engine, flagged, and
never taken for the provider's: a later run (or `reframe backfill --retry-fallbacks`) tries the provider again."""

from __future__ import annotations

from typing import Any

import pytest

from reframe_pipeline.adapters.providers.local import LocalProvider
from reframe_pipeline.application.fallback import falls_back
from reframe_pipeline.application.object_metadata import META_FALLBACK, is_current
from reframe_pipeline.application.pipeline import RetryLaterError
from reframe_pipeline.domain.errors import (
    AccountError,
    BudgetExceededError,
    DeadlineError,
    OutputLimitError,
    ProviderRejectedError,
    ProviderTransientError,
    SourceChangedError,
    VariantInProgressError,
)
from reframe_pipeline.domain.provenance import COMPOSITE_SYNTHETIC, COMPOSITE_WITH_TRAINED
from reframe_pipeline.settings import Settings, SettingsError
from tests.unit.fakes import FakeProvider, MemoryBudget
from tests.unit.orchestration_harness import OUT, PRICE, SOURCE, TARGETS

UNSAFE = ProviderRejectedError("Ideogram flagged the result as unsafe and withheld it", code="unsafe_image", status=200)


def test_an_unsafe_variant_is_made_locally_flagged_and_the_provider_is_tried_again_later(
    make: Any, counted: list[str]
) -> None:
    h = make(provider=FakeProvider([UNSAFE]), fallback=LocalProvider(), max_parallel_calls=1)
    h.upload(targets=TARGETS[:2])
    outcome = h.handle()
    assert outcome.action == "processed"  # permanent: acknowledged, nothing to retry
    entry = h.manifest()["variants"][0]
    assert entry["status"] == "created" and entry["provider"] == "local"
    assert entry["fallback_reason"] == {"code": "unsafe_image", "message": UNSAFE.message}
    assert entry["error"] is None and entry["generation"] is None and entry["generation_key"] is None
    assert entry["provenance"] == {"digital_source_type": COMPOSITE_SYNTHETIC, "model": None, "signed": False}
    head = h.storage.head(OUT + "1536x512.png")
    assert head is not None and head.metadata[META_FALLBACK] == "local" and "generation" not in head.metadata
    param_hash = _planned(h)[0].param_hash
    assert head.metadata["params-hash"] == param_hash  # made for these parameters, yet not current:
    assert not is_current(head, h.storage.head(SOURCE), param_hash)
    assert is_current(head, h.storage.head(SOURCE), param_hash, fallback_ok=True)
    other = h.manifest()["variants"][1]
    assert (other["provider"], other["fallback_reason"]) == ("segmind", None)
    # One kept generation: the provider's for the other target; the local image is never kept as one.
    assert len(h.generations()) == 1
    assert counted.count("VariantsFallback") == 1 and "VariantsFailed" not in counted

    # A later run (a redelivery, a new event for the same version) is owed the provider's image.
    again = h.handle()
    assert [r.status for r in again.records] == ["created", "existing"]
    assert again.records[0].provider == "segmind" and again.records[0].fallback_reason is None
    replaced = h.storage.head(OUT + "1536x512.png")
    assert replaced is not None and META_FALLBACK not in replaced.metadata
    assert replaced.metadata["generation"] == again.records[0].generation
    assert h.manifest()["variants"][0]["provenance"]["digital_source_type"] == COMPOSITE_WITH_TRAINED
    assert h.provider.calls == 3


def _planned(h: Any) -> Any:
    from tests.unit.orchestration_harness import _found

    return h.pipeline.config.plan(_found(h))[0]


def test_a_transient_failure_gets_a_fallback_now_and_the_record_still_goes_back_to_sqs(
    make: Any, counted: list[str]
) -> None:
    # The fake fails the call as the HTTP client does once its in-process retries are used up.
    h = make(provider=FakeProvider([ProviderTransientError("busy", status=503)]), fallback=LocalProvider())
    h.upload(targets=TARGETS[:1])
    with pytest.raises(RetryLaterError):  # the page has an image; the provider is still owed its try
        h.handle()
    entry = h.manifest()["variants"][0]
    assert (entry["status"], entry["provider"], entry["fallback_reason"]["code"]) == (
        "created",
        "local",
        "provider_transient",
    )
    assert entry["attempts"] == 1 and entry["cost_usd"] == pytest.approx(PRICE)  # a 503 may have been billed
    outcome = h.handle()  # the redelivery: the provider answers now and replaces the fallback
    assert (outcome.action, outcome.records[0].provider, outcome.records[0].status) == (
        "processed",
        "segmind",
        "created",
    )
    assert outcome.records[0].fallback_reason is None


def test_a_budget_refusal_is_filled_for_free_and_counted(make: Any, counted: list[str]) -> None:
    budget = MemoryBudget(limit=PRICE + PRICE / 2)
    h = make(budget=budget, fallback=LocalProvider(), max_parallel_calls=1)
    h.upload(targets=TARGETS[:2])
    outcome = h.handle()
    assert outcome.action == "processed"
    refused = outcome.records[1]
    assert (refused.provider, refused.cost_usd, refused.fallback_reason and refused.fallback_reason.code) == (
        "local",
        0.0,
        "budget_exceeded",
    )
    assert budget.spent == pytest.approx(PRICE)  # the fallback reserved nothing
    assert "BudgetRefusals" in counted and counted.count("VariantsFallback") == 1


def test_without_the_setting_a_refused_variant_stays_failed(make: Any, counted: list[str]) -> None:
    h = make(provider=FakeProvider([UNSAFE]))
    h.upload(targets=TARGETS[:1])
    h.handle()
    assert h.statuses() == {"1536x512": "failed"}
    assert "VariantsFallback" not in counted and h.outputs() == [OUT + "manifest.json"]


def test_a_fallback_that_fails_too_leaves_the_providers_failure(make: Any, counted: list[str]) -> None:
    class Broken(LocalProvider):
        def reframe(self, request: Any) -> Any:
            raise OSError("disk full")

    h = make(provider=FakeProvider([UNSAFE]), fallback=Broken())
    h.upload(targets=TARGETS[:1])
    h.handle()
    entry = h.manifest()["variants"][0]
    assert (entry["status"], entry["error"]["code"], entry["fallback_reason"]) == ("failed", "unsafe_image", None)


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (UNSAFE, True),
        (ProviderRejectedError("bad request", status=400), True),
        (ProviderRejectedError("wrong size (again)", code="wrong_size"), True),
        (ProviderTransientError("busy", status=503), True),
        (BudgetExceededError("spent"), True),
        (AccountError("no key", code="missing_api_key"), True),
        # Not the provider failing this variant now: the work belongs elsewhere, or is still under way.
        (SourceChangedError("overwritten"), False),
        (VariantInProgressError("elsewhere"), False),
        (DeadlineError("no time"), False),
        (OutputLimitError("too long"), False),
        (ValueError("a bug"), False),
    ],
)
def test_which_failures_fall_back(exc: Exception, expected: bool) -> None:
    assert falls_back(exc) is expected


def test_the_setting_is_validated_once() -> None:
    assert Settings.from_env({}).fallback_provider == "none"
    for off in ("", "none", "off"):
        assert Settings.from_env({"FALLBACK_PROVIDER": off}).fallback_provider == "none"
    assert Settings.from_env({"FALLBACK_PROVIDER": "local"}).fallback_provider == "local"
    with pytest.raises(SettingsError, match="FALLBACK_PROVIDER"):
        Settings.from_env({"FALLBACK_PROVIDER": "segmind"})
    with pytest.raises(SettingsError, match="falls back to itself"):
        Settings.from_env({"FALLBACK_PROVIDER": "local", "REFRAME_PROVIDER": "local"})


def test_the_providers_variant_replacing_a_fallback_is_announced_as_a_new_outcome() -> None:
    from reframe_pipeline.domain.manifest import ConfigInfo, ErrorInfo, Manifest, SourceInfo, VariantRecord
    from reframe_pipeline.domain.notices import ready

    def manifest(**fields: Any) -> Manifest:
        variant = VariantRecord(name="banner", key=OUT + "banner.png", status="created", width=8, height=8, **fields)
        source = SourceInfo(bucket="b", key=SOURCE, etag="e", version="v")
        return Manifest(source=source, config=ConfigInfo(**{"from": "object"}), variants=[variant])

    fallback = ready(manifest(provider="local", fallback_reason=ErrorInfo(code="unsafe_image", message="x")), "m", "c")
    provider = ready(manifest(provider="segmind"), "m", "c")
    assert fallback.status == provider.status == "completed"
    assert fallback.event_id != provider.event_id  # a consumer de-duplicating on it still hears of the replacement
    again = ready(manifest(provider="local", fallback_reason=ErrorInfo(code="unsafe_image", message="x")), "m", "c")
    assert again.event_id == fallback.event_id
