"""The four promises, attacked on purpose: pay once per variant, never lose a paid result, never spend
past the budget, and what sits under the output prefix always matches the current source and sidecar.
Each test reproduces a way they were once broken, through the real handler over moto and the emulator."""

from __future__ import annotations

import hashlib
import io
import json
import os
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from reframe_local import servers
from reframe_local.lambda_context import LocalContext
from reframe_pipeline import handler

from ..waiting import wait_until
from .conftest import BUCKET, Stack, s3_event, sqs_event
from .test_reliability import TABLE, create_idempotency_table

SOURCE = "uploads/promise/photo.jpg"
OUT = "reframed/promise/photo.jpg/"
ONE = {"version": 1, "targets": [{"resolution": "1024x1024"}]}


def with_seed(seed: int) -> dict[str, Any]:
    return {**ONE, "seed": seed}


def other_image() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (300, 200), "purple").save(out, "JPEG")
    return out.getvalue()


def etag(stack: Stack, key: str) -> str:
    return str(stack.s3.head_object(Bucket=BUCKET, Key=key)["ETag"].strip('"'))


def metadata(stack: Stack, key: str) -> dict[str, str]:
    return dict(stack.s3.head_object(Bucket=BUCKET, Key=key)["Metadata"])


def in_background(stack: Stack, event: dict[str, Any]) -> tuple[threading.Thread, list[dict[str, Any]]]:
    """An invocation running while the test acts on the bucket; joined by the test."""
    results: list[dict[str, Any]] = []
    thread = threading.Thread(target=lambda: results.append(stack.invoke(event)))
    thread.start()
    return thread, results


def wait_at_provider(stack: Stack) -> None:
    """Until a call is being answered (slowly) by the emulator."""
    wait_until(lambda: stack.stats()["in_flight"] >= 1, 20, "a call at the provider")


def budget_spent(table: Any) -> list[float]:
    rows = table.scan(TableName=TABLE)["Items"]
    return [float(item["spent_usd"]["N"]) for item in rows if item["id"]["S"].startswith("budget#")]


def ticket_stored(table: Any) -> bool:
    """A paid generation's ticket is in the journal (the state a waiting instance is in)."""
    items = table.scan(TableName=TABLE)["Items"]
    return any(item["id"]["S"].startswith("journal#") and "ticket" in item for item in items)


def by_endpoint(stack: Stack, endpoint: str) -> int:
    return int(stack.stats()["by_endpoint"].get(endpoint, 0))


@pytest.fixture
def table(stack: Stack, aws_env: str) -> Any:
    dynamodb = servers.client("dynamodb", aws_env)
    create_idempotency_table(dynamodb)
    stack.configure(IDEMPOTENCY_TABLE=TABLE)
    return dynamodb


# -- variants always match the current source and sidecar ------------------------------------------


def test_a_sidecar_reverted_to_earlier_parameters_gets_its_own_image_back(stack: Stack, table: Any):
    stack.put_image(SOURCE)
    hashes = []
    for seed in (100, 200, 100):
        stack.put(SOURCE + ".reframe.json", with_seed(seed))
        assert stack.invoke(sqs_event(s3_event(SOURCE + ".reframe.json"))) == {"batchItemFailures": []}
        hashes.append(metadata(stack, OUT + "1024x1024.jpg")["params-hash"])

    assert hashes[0] == hashes[2] != hashes[1]  # the file is the seed-100 image again, not the seed-200 one
    manifest = stack.read_json(OUT + "manifest.json")
    assert manifest["variants"][0]["seed"] == 100


def test_an_overwrite_during_a_slow_call_is_not_undone_by_the_older_invocation(stack: Stack):
    stack.configure(SEGMIND_API_MODE="sync")
    stack.put_image(SOURCE)
    stack.put(SOURCE + ".reframe.json", ONE)
    stack.faults("slow:2500")  # the older invocation's call; the newer one's is quick
    older, older_result = in_background(stack, sqs_event(s3_event(SOURCE)))
    wait_at_provider(stack)

    stack.put(SOURCE, other_image())
    newer_etag = etag(stack, SOURCE)
    assert stack.invoke(sqs_event(s3_event(SOURCE))) == {"batchItemFailures": []}
    assert stack.stats()["in_flight"] == 1  # the newer one finished first: the older is still at the provider
    older.join(timeout=60)

    assert older_result == [{"batchItemFailures": []}]  # the newer upload's event owns the folder
    assert metadata(stack, OUT + "1024x1024.jpg")["source-etag"] == newer_etag
    assert stack.read_json(OUT + "manifest.json")["source"]["etag"] == newer_etag
    billed = stack.stats()["billed"]
    redelivered = stack.invoke(sqs_event(s3_event(SOURCE)))
    assert redelivered == {"batchItemFailures": []}
    assert [v["status"] for v in stack.read_json(OUT + "manifest.json")["variants"]] == ["existing"]
    assert stack.stats()["billed"] == billed


def test_a_delete_during_a_slow_call_leaves_no_orphans(stack: Stack):
    stack.configure(SEGMIND_API_MODE="sync")
    stack.put_image(SOURCE)
    stack.put(SOURCE + ".reframe.json", ONE)
    stack.emulator_config(latency_ms=2500)  # the source is fetched first, as a provider does, then the wait
    create, create_result = in_background(stack, sqs_event(s3_event(SOURCE)))
    wait_at_provider(stack)

    stack.s3.delete_object(Bucket=BUCKET, Key=SOURCE)
    removed = stack.invoke(sqs_event(s3_event(SOURCE, "ObjectRemoved:Delete")))
    assert stack.stats()["in_flight"] == 1  # the delete was handled while the create was at the provider
    create.join(timeout=60)

    assert removed == {"batchItemFailures": []}
    assert create_result == [{"batchItemFailures": []}]
    assert stack.stats()["billed"] == 1  # the generation succeeded, and was not stored for a deleted source
    assert stack.keys(OUT) == []


def test_deleting_a_source_leaves_the_outputs_of_a_source_nested_under_its_name(stack: Stack):
    outer, inner = "uploads/shoot", "uploads/shoot/cover.png"
    stack.put(outer, other_image())
    stack.put_image(inner)
    stack.put("uploads/_reframe.json", ONE)
    for key in (outer, inner):
        assert stack.invoke(sqs_event(s3_event(key))) == {"batchItemFailures": []}
    inner_outputs = stack.keys("reframed/shoot/cover.png/")
    assert inner_outputs

    stack.s3.delete_object(Bucket=BUCKET, Key=outer)
    stack.invoke(sqs_event(s3_event(outer, "ObjectRemoved:Delete")))

    assert stack.keys("reframed/shoot/") == inner_outputs


# -- a paid result is never lost or paid twice -----------------------------------------------------


def test_a_key_whose_metadata_would_pass_2_kb_is_written_once_and_paid_once(stack: Stack):
    key = "uploads/" + "写真" * 120 + ".jpg"  # 240 CJK characters: 720 bytes, legal; percent-encoded 2.2 KB
    stack.put_image(key)
    stack.put(key + ".reframe.json", ONE)

    result = stack.invoke(sqs_event(s3_event(key)))

    assert result == {"batchItemFailures": []}
    out = "reframed/" + key.removeprefix("uploads/") + "/1024x1024.jpg"
    assert metadata(stack, out)["source-key"] == "sha256:" + hashlib.sha256(key.encode()).hexdigest()
    assert stack.stats()["billed"] == 1


def test_a_key_too_long_for_its_outputs_is_refused_before_paying(stack: Stack, logs: io.StringIO):
    key = "uploads/" + "k" * 1000 + ".jpg"  # 1012 bytes: legal itself, its outputs would pass 1024
    stack.put_image(key)
    stack.put("uploads/_reframe.json", ONE)

    result = stack.invoke(sqs_event(s3_event(key)))

    assert result == {"batchItemFailures": []}  # nothing to retry: it can never be stored
    assert stack.stats()["billed"] == 0
    assert "over S3's limit of 1024" in logs.getvalue()


def test_a_call_slower_than_the_deadline_returns_before_the_invocation_ends(stack: Stack):
    stack.configure(SEGMIND_API_MODE="sync", CALL_BUDGET_MS="3000", UPLOAD_RESERVE_MS="5000", READ_TIMEOUT_S="3")
    stack.put_image(SOURCE)
    stack.put(SOURCE + ".reframe.json", ONE)
    stack.faults("slow:10000", "slow:10000", "slow:10000")
    context = LocalContext(timeout_s=9)  # each answer would take 10 s

    result = handler.lambda_handler(sqs_event(s3_event(SOURCE)), context)

    assert context.get_remaining_time_in_millis() > 0  # no request outlived the invocation
    assert result == {"batchItemFailures": [{"itemIdentifier": "m-0"}]}
    assert stack.read_json(OUT + "manifest.json")["variants"][0]["status"] == "failed"


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_a_provider_answering_the_wrong_size_is_paid_once_more_then_refused(stack: Stack, table: Any, mode: str):
    stack.configure(SEGMIND_API_MODE=mode, DAILY_BUDGET_USD="1.00")
    stack.put_image(SOURCE)
    stack.put(SOURCE + ".reframe.json", ONE)
    stack.faults(*["wrong-size"] * 40)  # every answer, however often asked (polls take faults too)

    results = [stack.invoke(sqs_event(s3_event(SOURCE))) for _ in range(3)]  # and redeliveries

    assert results == [{"batchItemFailures": []}] * 3  # permanent: not handed back to the queue
    variant = stack.read_json(OUT + "manifest.json")["variants"][0]
    assert variant["error"]["code"] == "wrong_size"
    assert stack.stats()["billed"] == 2  # one regeneration, then never again
    assert budget_spent(table) == [0.15]  # both paid attempts are counted


def test_an_ideogram_result_whose_download_fails_is_fetched_again_not_generated_again(ideogram: Stack):
    ideogram.put_image(SOURCE)
    ideogram.put(SOURCE + ".reframe.json", ONE)
    ideogram.faults("result-503")

    assert ideogram.invoke(sqs_event(s3_event(SOURCE))) == {"batchItemFailures": []}

    assert ideogram.read_json(OUT + "manifest.json")["variants"][0]["status"] == "created"
    assert by_endpoint(ideogram, "ideogram") == 1 and ideogram.stats()["billed"] == 1


@pytest.mark.parametrize("mode", ["sync", "auto"])
def test_a_segmind_result_url_that_keeps_failing_is_downloaded_again_not_generated_again(
    stack: Stack, table: Any, mode: str
):
    stack.configure(SEGMIND_API_MODE=mode, DAILY_BUDGET_USD="1.00")
    if mode == "auto":
        stack.emulator_config(serve_v2=False)  # auto on a model v2 does not serve: v1
    stack.emulator_config(response_format="json-url")
    stack.put_image(SOURCE)
    stack.put(SOURCE + ".reframe.json", ONE)
    stack.faults("result-503:4", "result-503:4")  # every download of this receive (auto: one taken by v2's 404)

    first = stack.invoke(sqs_event(s3_event(SOURCE)))

    assert first == {"batchItemFailures": [{"itemIdentifier": "m-0"}]}
    assert stack.read_json(OUT + "manifest.json")["variants"][0]["error"]["code"] == "result_fetch"
    assert stack.stats()["billed"] == 1 and ticket_stored(table)
    stack.configure()  # a new container: the journal's ticket is what is left of the paid generation
    assert stack.invoke(sqs_event(s3_event(SOURCE))) == {"batchItemFailures": []}
    assert stack.read_json(OUT + "manifest.json")["variants"][0]["status"] == "created"
    assert stack.stats()["billed"] == 1 and budget_spent(table) == [0.075]


def test_an_async_job_outliving_the_invocation_is_collected_later_without_paying_again(stack: Stack, table: Any):
    stack.configure(CALL_BUDGET_MS="2000", READ_TIMEOUT_S="2", UPLOAD_RESERVE_MS="5000")
    stack.emulator_config(latency_ms=9000)  # the job outlives the invocation, however slow its start
    stack.put_image(SOURCE)
    stack.put(SOURCE + ".reframe.json", ONE)

    first = stack.invoke(sqs_event(s3_event(SOURCE)), timeout_s=8)

    assert first == {"batchItemFailures": [{"itemIdentifier": "m-0"}]}
    assert stack.read_json(OUT + "manifest.json")["variants"][0]["error"]["code"] == "pending"
    stack.configure()  # a new container: only the table remembers the request id
    wait_until(
        lambda: stack.invoke(sqs_event(s3_event(SOURCE))) == {"batchItemFailures": []}, 30, "a redelivery to succeed"
    )
    assert stack.read_json(OUT + "manifest.json")["variants"][0]["status"] == "created"
    assert stack.stats()["billed"] == 1 and by_endpoint(stack, "segmind-v2") == 1


def test_lost_connections_while_polling_cost_nothing(stack: Stack):
    stack.put_image(SOURCE)
    stack.put(SOURCE + ".reframe.json", ONE)
    stack.faults("ok", "reset", "reset")  # the POST goes through; the first two polls are cut

    assert stack.invoke(sqs_event(s3_event(SOURCE))) == {"batchItemFailures": []}
    assert stack.stats()["billed"] == 1


def test_auto_mode_falls_back_to_the_sync_api_where_the_model_is_not_served_async(stack: Stack):
    stack.emulator_config(serve_v2=False)
    stack.put_image(SOURCE)
    stack.put(
        SOURCE + ".reframe.json", {"version": 1, "targets": [{"resolution": "1024x1024"}, {"aspect_ratio": "16:9"}]}
    )

    assert stack.invoke(sqs_event(s3_event(SOURCE))) == {"batchItemFailures": []}
    assert stack.stats()["billed"] == 2 and by_endpoint(stack, "segmind") == 2


def test_a_function_killed_mid_call_is_resumed_by_the_redelivery_without_paying_again(
    stack: Stack, table: Any, tmp_path: Path
):
    stack.configure(CALL_BUDGET_MS="2000", READ_TIMEOUT_S="2", UPLOAD_RESERVE_MS="5000")
    stack.emulator_config(latency_ms=3000)
    stack.put_image(SOURCE)
    stack.put(SOURCE + ".reframe.json", ONE)
    event_file = tmp_path / "event.json"
    event_file.write_text(json.dumps(sqs_event(s3_event(SOURCE))))
    # A separate process, as a Lambda instance; its in-progress lock lives as long as its deadline (8 s).
    command = [sys.executable, "-m", "reframe_cli.cli", "invoke", "--event", str(event_file), "--timeout", "8"]
    worker = subprocess.Popen(command, env=dict(os.environ), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until(lambda: ticket_stored(table), 20, "the ticket in the journal")  # paid, journaled, waiting
    finally:
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=10)

    # Redelivered: refused while the dead instance's lock lasts, then collected from the stored request id.
    wait_until(
        lambda: stack.invoke(sqs_event(s3_event(SOURCE))) == {"batchItemFailures": []}, 30, "a redelivery to succeed"
    )
    assert stack.read_json(OUT + "manifest.json")["variants"][0]["status"] == "created"
    assert stack.stats()["billed"] == 1


# -- the budget is a ceiling -----------------------------------------------------------------------


def test_a_refund_after_midnight_credits_the_day_that_spent(stack: Stack, table: Any, monkeypatch: pytest.MonkeyPatch):
    from reframe_pipeline.adapters import daily_budget as budget

    daily = budget.DailyBudget(TABLE, 1.0, table)
    monkeypatch.setattr(budget, "today", lambda: "2026-11-24")
    reservation = daily.reserve(0.075)
    monkeypatch.setattr(budget, "today", lambda: "2026-11-25")
    daily.refund(reservation)
    daily.refund(budget.Reservation("2026-11-23", 0.075))  # a day with no row: logged, not raised

    rows = {item["id"]["S"]: item["spent_usd"]["N"] for item in table.scan(TableName=TABLE)["Items"]}
    assert rows == {"budget#2026-11-24": "0.000"}


def test_ideogram_insufficient_funds_waits_for_the_account_and_costs_nothing(ideogram: Stack, table: Any):
    ideogram.configure(DAILY_BUDGET_USD="1.00")
    ideogram.put_image(SOURCE)
    ideogram.put(SOURCE + ".reframe.json", ONE)
    ideogram.faults("402")

    result = ideogram.invoke(sqs_event(s3_event(SOURCE)))

    assert result == {"batchItemFailures": [{"itemIdentifier": "m-0"}]}  # kept until the account is fixed
    assert ideogram.read_json(OUT + "manifest.json")["variants"][0]["error"]["code"] == "http_402"
    assert budget_spent(table) == [0.0]  # refused before any generation: given back


def test_an_image_withheld_as_unsafe_is_counted_as_spent(ideogram: Stack, table: Any):
    ideogram.configure(DAILY_BUDGET_USD="1.00")
    ideogram.put_image(SOURCE)
    ideogram.put(SOURCE + ".reframe.json", ONE)
    ideogram.faults("unsafe")

    assert ideogram.invoke(sqs_event(s3_event(SOURCE))) == {"batchItemFailures": []}

    variant = ideogram.read_json(OUT + "manifest.json")["variants"][0]
    assert variant["error"]["code"] == "unsafe_image" and variant["cost_usd"] == 0.06
    assert budget_spent(table) == [0.06]


@pytest.mark.parametrize("reference", ["styles/missing.png", "https://styles.example.com/a.png"])
def test_a_style_reference_that_cannot_be_fetched_spends_nothing(
    ideogram: Stack, table: Any, monkeypatch: pytest.MonkeyPatch, reference: str
):
    resolve = socket.getaddrinfo

    def styles_host_down(host: str, *args: Any, **kwargs: Any) -> Any:
        if host == "styles.example.com":
            raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")
        return resolve(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", styles_host_down)
    ideogram.configure(DAILY_BUDGET_USD="1.00")
    ideogram.put_image(SOURCE)
    ideogram.put(SOURCE + ".reframe.json", {**ONE, "style_reference_images": [reference]})

    for _ in range(2):  # and its redelivery, when the failure may pass
        ideogram.invoke(sqs_event(s3_event(SOURCE)))

    assert ideogram.read_json(OUT + "manifest.json")["variants"][0]["status"] == "failed"
    assert by_endpoint(ideogram, "ideogram") == 0
    assert budget_spent(table) in ([], [0.0])  # nothing sent, nothing reserved


# -- records handed back come back soon ------------------------------------------------------------


def test_a_failed_record_comes_back_after_its_own_short_visibility(stack: Stack, aws_env: str):
    sqs = servers.client("sqs", aws_env)
    queue = sqs.create_queue(QueueName="promise-queue", Attributes={"VisibilityTimeout": "600"})["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    stack.configure(RETRY_VISIBILITY_S="1", MAX_ATTEMPTS="1")
    stack.put_image(SOURCE)
    stack.put(SOURCE + ".reframe.json", ONE)
    stack.faults("503")
    sqs.send_message(QueueUrl=queue, MessageBody=json.dumps(s3_event(SOURCE)))
    message = sqs.receive_message(QueueUrl=queue, AttributeNames=["All"])["Messages"][0]
    event = sqs_event(s3_event(SOURCE))
    event["Records"][0].update(
        messageId=message["MessageId"], receiptHandle=message["ReceiptHandle"], eventSourceARN=arn
    )
    event["Records"][0]["attributes"] = message["Attributes"]

    assert stack.invoke(event) == {"batchItemFailures": [{"itemIdentifier": message["MessageId"]}]}

    again = sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=5, AttributeNames=["All"]).get("Messages", [])
    assert [m["MessageId"] for m in again] == [message["MessageId"]]  # not after the queue's 600 s
    assert again[0]["Attributes"]["ApproximateReceiveCount"] == "2"
