"""FALLBACK_PROVIDER=local over moto's S3 and the emulator: a variant the provider refuses arrives all the same,
made by the local engine and flagged as such; `reframe backfill --retry-fallbacks` replaces it with the
provider's once the provider makes it."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest

from reframe_cli.cli import main
from reframe_local import servers
from reframe_pipeline.application.generations import GENERATION_PREFIX
from reframe_pipeline.domain.provenance import COMPOSITE_SYNTHETIC, COMPOSITE_WITH_TRAINED

from .conftest import BUCKET, Stack, s3_event, sqs_event
from .test_backfill import Report

SOURCE = "uploads/fallback/poster.jpg"
OUT = "reframed/fallback/poster.jpg/"
TARGETS = {"version": 1, "targets": [{"resolution": "1536x640"}, {"preset": "instagram-story"}]}


def entries(stack: Stack) -> dict[str, dict[str, Any]]:
    return {v["name"]: v for v in stack.read_json(OUT + "manifest.json")["variants"]}


def counted(printed: str, metric: str) -> float:
    blobs = [json.loads(line) for line in printed.splitlines() if line.startswith('{"_aws"')]
    return sum(sum(blob[metric]) for blob in blobs if metric in blob)


def body(stack: Stack, key: str) -> bytes:
    return bytes(stack.s3.get_object(Bucket=BUCKET, Key=key)["Body"].read())


def backfill(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, Report]:
    code = main(["backfill", f"s3://{BUCKET}/uploads/", *args])
    return code, Report(capsys.readouterr().out)


@pytest.fixture
def refusing(ideogram: Stack) -> Stack:
    """Ideogram's endpoint, the local fallback on, one call at a time (so the emulator's faults land in order)."""
    ideogram.configure(FALLBACK_PROVIDER="local", MAX_PARALLEL_CALLS="1")
    ideogram.put_image(SOURCE)
    ideogram.put(SOURCE + ".reframe.json", TARGETS)
    return ideogram


def test_an_unsafe_variant_arrives_as_a_flagged_local_fallback_and_backfill_replaces_it(
    refusing: Stack, logs: io.StringIO, capsys: pytest.CaptureFixture[str]
):
    refusing.faults("unsafe", "ok")
    result = refusing.invoke(sqs_event(s3_event(SOURCE)))

    assert result == {"batchItemFailures": []}  # unsafe is final: acknowledged, as without the fallback
    found = entries(refusing)
    banner, story = found["1536x640"], found["instagram-story"]
    assert banner["status"] == "created" and banner["provider"] == "local" and banner["error"] is None
    assert banner["fallback_reason"]["code"] == "unsafe_image" and "unsafe" in banner["fallback_reason"]["message"]
    assert banner["provenance"] == {"digital_source_type": COMPOSITE_SYNTHETIC, "model": None, "signed": False}
    assert banner["cost_usd"] > 0  # Ideogram bills a withheld image: the spend is still shown
    assert (story["provider"], story["fallback_reason"]) == ("ideogram", None)
    assert refusing.image(banner["key"]).size == (1536, 640)
    # The XMP says what made it, and the object's metadata keeps it from passing for the provider's.
    assert COMPOSITE_SYNTHETIC.encode() in body(refusing, banner["key"])
    head = refusing.s3.head_object(Bucket=BUCKET, Key=banner["key"])["Metadata"]
    assert head["fallback"] == "local" and "generation" not in head
    # Only the provider's generation of the story is kept; nothing stands for the unsafe one.
    kept = [key for key in refusing.keys(OUT) if f"/{GENERATION_PREFIX}" in key]
    assert kept == [story["generation_key"]]
    assert counted(capsys.readouterr().out, "VariantsFallback") == 1
    billed = refusing.stats()["billed"]

    # A plain backfill counts the fallback as present (nothing to pay); --retry-fallbacks asks the provider.
    code, report = backfill(capsys, "--dry-run")
    assert code == 0 and [report.count(n) for n in ("missing", "fallbacks kept")] == [0, 1]
    code, report = backfill(capsys, "--dry-run", "--retry-fallbacks")
    assert code == 0 and [report.count(n) for n in ("missing", "fallbacks to retry", "paid generations")] == [1, 1, 1]
    assert refusing.stats()["billed"] == billed

    code, report = backfill(capsys, "--retry-fallbacks")
    assert code == 0 and "processed 1 image(s): 1 created, 1 existing" in report.out
    found = entries(refusing)
    banner = found["1536x640"]
    assert (banner["status"], banner["provider"], banner["fallback_reason"]) == ("created", "ideogram", None)
    assert banner["provenance"]["digital_source_type"] == COMPOSITE_WITH_TRAINED
    assert "fallback" not in refusing.s3.head_object(Bucket=BUCKET, Key=banner["key"])["Metadata"]
    assert refusing.stats()["billed"] == billed + 1  # the one variant, paid once
    code, report = backfill(capsys, "--dry-run", "--retry-fallbacks")
    assert [report.count(n) for n in ("missing", "fallbacks to retry")] == [0, 0]


def test_a_transient_failure_fills_the_page_now_and_the_redelivery_brings_the_providers(refusing: Stack):
    refusing.configure(MAX_ATTEMPTS="2")
    refusing.faults("503", "503", "ok")
    result = refusing.invoke(sqs_event(s3_event(SOURCE)))

    assert result == {"batchItemFailures": [{"itemIdentifier": "m-0"}]}  # the provider is still owed its try
    banner = entries(refusing)["1536x640"]
    assert (banner["status"], banner["provider"], banner["fallback_reason"]["code"]) == ("created", "local", "http_503")
    assert refusing.image(banner["key"]).size == (1536, 640)

    assert refusing.invoke(sqs_event(s3_event(SOURCE))) == {"batchItemFailures": []}
    found = entries(refusing)
    assert [(v["status"], v["provider"]) for v in found.values()] == [("created", "ideogram"), ("existing", "ideogram")]


def test_without_the_setting_the_refused_variant_stays_missing(ideogram: Stack):
    ideogram.configure(MAX_PARALLEL_CALLS="1")
    ideogram.put_image(SOURCE)
    ideogram.put(SOURCE + ".reframe.json", TARGETS)
    ideogram.faults("unsafe")
    ideogram.invoke(sqs_event(s3_event(SOURCE)))
    banner = entries(ideogram)["1536x640"]
    assert (banner["status"], banner["error"]["code"], banner["fallback_reason"]) == ("failed", "unsafe_image", None)


# -- with the idempotency table: the guard neither pays twice for a verdict nor takes a fallback for done --


@pytest.fixture
def guarded(refusing: Stack, aws_env: str) -> Stack:
    from .test_promises import TABLE, create_idempotency_table

    create_idempotency_table(servers.client("dynamodb", aws_env))
    refusing.configure(IDEMPOTENCY_TABLE=TABLE)
    return refusing


def test_a_duplicate_event_does_not_pay_again_for_an_unsafe_verdict_filled_by_the_fallback(guarded: Stack):
    guarded.faults("unsafe", "ok")
    assert guarded.invoke(sqs_event(s3_event(SOURCE))) == {"batchItemFailures": []}
    billed = guarded.stats()["billed"]

    assert guarded.invoke(sqs_event(s3_event(SOURCE))) == {"batchItemFailures": []}  # S3 sends duplicates
    banner = entries(guarded)["1536x640"]
    assert (banner["status"], banner["provider"], banner["fallback_reason"]["code"]) == (
        "existing",
        "local",
        "unsafe_image",
    )
    assert guarded.stats()["billed"] == billed  # the verdict is remembered with its fallback


def test_with_the_table_a_fallback_for_a_transient_failure_is_not_recorded_as_done(guarded: Stack):
    guarded.configure(MAX_ATTEMPTS="1")
    guarded.faults("503", "ok")
    assert guarded.invoke(sqs_event(s3_event(SOURCE))) == {"batchItemFailures": [{"itemIdentifier": "m-0"}]}
    assert entries(guarded)["1536x640"]["provider"] == "local"

    assert guarded.invoke(sqs_event(s3_event(SOURCE))) == {"batchItemFailures": []}
    banner = entries(guarded)["1536x640"]
    assert (banner["status"], banner["provider"], banner["fallback_reason"]) == ("created", "ideogram", None)
