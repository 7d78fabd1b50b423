"""The promises when AWS misbehaves: throttles, 503s, endpoints that hang, unreadable secrets, races with the
sidecar. Each test drives the real handler over moto and the emulator with faults in the handler's own AWS
clients (aws_faults.py), and asserts the promise: what the emulator billed, the manifest, the day's spend.

Each case failed on the code the review ran, and passes with its fix. (The unreadable webhook secret's case is
in test_webhook.py, beside its receiver.)"""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import requests

from reframe_cli import gallery_server
from reframe_local import servers
from reframe_pipeline.settings import Settings

from ..waiting import wait_until
from .aws_faults import AwsFaults
from .conftest import BUCKET, Stack, s3_event, sqs_event
from .test_failure_logs import counted, lines
from .test_promises import budget_spent, in_background, wait_at_provider
from .test_reliability import TABLE, create_idempotency_table

SOURCE = "uploads/faults/photo.jpg"
OUT = "reframed/faults/photo.jpg/"
ONE = {"version": 1, "targets": [{"resolution": "1024x1024"}]}
THROTTLED = "ProvisionedThroughputExceededException"
OK: dict[str, list[Any]] = {"batchItemFailures": []}


@pytest.fixture
def deployed(stack: Stack, aws_env: str) -> Stack:
    """The stack with the idempotency table a deployment has (guard, journal, budget, slots)."""
    create_idempotency_table(servers.client("dynamodb", aws_env))
    stack.configure(IDEMPOTENCY_TABLE=TABLE)
    stack.put_image(SOURCE)
    return stack


def receive(stack: Stack, key: str = SOURCE, timeout_s: float = 120) -> dict[str, Any]:
    return stack.invoke(sqs_event(s3_event(key)), timeout_s=timeout_s)


def statuses(stack: Stack) -> dict[str, str]:
    return {v["name"]: v["status"] for v in stack.read_json(OUT + "manifest.json")["variants"]}


def table_items(stack: Stack, prefix: str) -> list[dict[str, Any]]:
    dynamodb = servers.client("dynamodb", stack.s3.meta.endpoint_url)
    return [i for i in dynamodb.scan(TableName=TABLE)["Items"] if i["id"]["S"].startswith(prefix)]


# -- 1. a failed result download buys a new generation -------------------------------------------------


def test_1_a_failed_result_download_is_retried_not_bought_again(deployed: Stack):
    deployed.configure(SEGMIND_API_MODE="sync")
    deployed.emulator_config(response_format="json-url")
    deployed.put(SOURCE + ".reframe.json", ONE)
    deployed.faults("result-503")

    for _ in range(2):
        receive(deployed)

    assert statuses(deployed) in ({"1024x1024": "created"}, {"1024x1024": "existing"})
    assert deployed.stats()["billed"] == 1


# -- 2. a throttled journal write throws away a live ticket --------------------------------------------


def ticket_write(params: dict[str, Any]) -> bool:
    return ":ticket" in params.get("ExpressionAttributeValues", {})


def test_2_a_throttled_ticket_write_keeps_the_ticket_and_pays_once(deployed: Stack, aws_faults: AwsFaults):
    deployed.configure(SEGMIND_API_MODE="async")
    deployed.put(SOURCE + ".reframe.json", ONE)
    # The ticket's write and the next one throttled through all of botocore's attempts (2 x 3), after the v2
    # job was accepted and paid.
    aws_faults.fail("dynamodb", "UpdateItem", code=THROTTLED, times=6, when=ticket_write)

    assert receive(deployed) == OK  # collected in the process that holds the ticket

    assert statuses(deployed) == {"1024x1024": "created"}
    assert deployed.stats()["billed"] == 1
    assert journaled_ticket(deployed) is not None  # written afterwards, for a later re-collection


# -- 3. sync mode loses paid bytes to S3 SlowDown -------------------------------------------------------


def test_3_an_s3_slowdown_on_the_outputs_loses_no_paid_generation(deployed: Stack, aws_faults: AwsFaults):
    deployed.configure(SEGMIND_API_MODE="sync")
    deployed.put(SOURCE + ".reframe.json", ONE)
    aws_faults.slow_down(OUT)

    receive(deployed)  # one receive under throttling
    aws_faults.clear()
    assert receive(deployed) == OK

    assert set(statuses(deployed).values()) <= {"created", "existing"}
    assert deployed.stats()["billed"] == 1


# -- 4. a function stopped during a SOURCE_CHECK=retry pays a third time ---------------------------------


def journaled_tickets(stack: Stack) -> list[str]:
    return [i["ticket"]["S"] for i in table_items(stack, "journal#") if "ticket" in i]


def journaled_ticket(stack: Stack) -> str | None:
    tickets = journaled_tickets(stack)
    return tickets[0] if tickets else None


def test_4_a_source_check_retry_cut_short_is_not_paid_a_third_time(deployed: Stack, tmp_path: Path):
    deployed.configure(
        SEGMIND_API_MODE="async",
        SOURCE_CHECK="retry",
        CALL_BUDGET_MS="2000",
        READ_TIMEOUT_S="2",
        UPLOAD_RESERVE_MS="5000",
    )
    deployed.put(SOURCE + ".reframe.json", ONE)
    deployed.faults("repaint", "repaint")  # the generation and its retry both fail the check
    deployed.emulator_config(latency_ms=1500)
    event_file = tmp_path / "event.json"
    event_file.write_text(json.dumps(sqs_event(s3_event(SOURCE))))
    # A separate process, as a Lambda instance, killed once the retry's ticket is journaled (in an entry of its own:
    # the first generation's is kept).
    command = [sys.executable, "-m", "reframe_cli.cli", "invoke", "--event", str(event_file), "--timeout", "12"]
    worker = subprocess.Popen(command, env=dict(os.environ), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until(lambda: len(journaled_tickets(deployed)) == 2, 20, "the first generation's and the retry's tickets")
    finally:
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=10)
    assert deployed.stats()["billed"] == 2

    # Redelivered: refused while the dead instance's lock lasts, then the retry is collected.
    deployed.emulator_config(latency_ms=0)
    wait_until(lambda: receive(deployed) == OK, 30, "the redelivery to finish the work")

    assert deployed.stats()["billed"] == 2  # SOURCE_CHECK=retry retries once: the retry is not scored as a first
    (variant,) = deployed.read_json(OUT + "manifest.json")["variants"]
    assert variant["cost_usd"] == pytest.approx(0.15)  # both generations, as spent


# -- 5. undoing a sidecar change deletes a paid variant ---------------------------------------------------

X_Z = {"version": 1, "targets": [{"resolution": "1024x1024"}, {"size": "300x200", "name": "z"}]}
X_Y = {"version": 1, "targets": [{"resolution": "1024x1024"}, {"aspect_ratio": "16:9", "name": "y"}]}


def test_5_a_reverted_sidecar_wins_over_the_slower_run_of_the_change(deployed: Stack):
    deployed.configure(SEGMIND_API_MODE="sync")
    deployed.put(SOURCE + ".reframe.json", X_Z)
    assert receive(deployed, SOURCE + ".reframe.json") == OK  # steady state {x, z}
    deployed.put(SOURCE + ".reframe.json", X_Y)
    deployed.faults("slow:3000")  # y, the only call of the change
    slow, slow_result = in_background(deployed, sqs_event(s3_event(SOURCE + ".reframe.json")))
    wait_at_provider(deployed)

    deployed.put(SOURCE + ".reframe.json", X_Z)  # the user reverts; that run needs no call
    assert receive(deployed, SOURCE + ".reframe.json") == OK
    slow.join(timeout=60)

    assert slow_result
    assert sorted(statuses(deployed)) == ["1024x1024", "z"]
    assert any(k.startswith(OUT + "z.") for k in deployed.keys(OUT))  # the paid variant z is kept
    assert not any(k.startswith(OUT + "y.") for k in deployed.keys(OUT))  # no orphan


def test_5_a_revert_landing_just_before_the_slow_runs_manifest_write_still_wins(deployed: Stack, aws_faults: AwsFaults):
    deployed.configure(SEGMIND_API_MODE="sync")
    deployed.put(SOURCE + ".reframe.json", X_Z)
    assert receive(deployed, SOURCE + ".reframe.json") == OK
    steady = deployed.read_json(OUT + "manifest.json")
    reverted = json.dumps({**steady, "variants": [{**v, "status": "existing"} for v in steady["variants"]]}).encode()
    deployed.put(SOURCE + ".reframe.json", X_Y)

    def revert_and_finish_first() -> None:  # after the slow run's last look at the sidecar
        deployed.put(SOURCE + ".reframe.json", X_Z)
        deployed.s3.put_object(Bucket=BUCKET, Key=OUT + "manifest.json", Body=reverted)  # the revert's run, done

    aws_faults.before("s3", "PutObject", revert_and_finish_first, when=lambda p: p["Key"] == OUT + "manifest.json")
    assert receive(deployed, SOURCE + ".reframe.json") == OK  # superseded: nothing to retry

    assert deployed.s3.get_object(Bucket=BUCKET, Key=OUT + "manifest.json")["Body"].read() == reverted
    assert any(k.startswith(OUT + "z.") for k in deployed.keys(OUT))
    assert not any(k.startswith(OUT + "y.") for k in deployed.keys(OUT))


# -- 6. DNS rebinding past the gallery's origin check -----------------------------------------------------


def test_6_the_gallery_refuses_a_rebound_host_name(deployed: Stack):
    deployed.put(SOURCE + ".reframe.json", ONE)
    assert receive(deployed) == OK
    paid = deployed.stats()["billed"]
    server = gallery_server.start(gallery_server.Gallery(deployed.s3, BUCKET, Settings.from_env()))
    port = server.port
    rebound = f"rebound.example:{port}"  # the attacker's name, resolved to 127.0.0.1
    headers = {"Host": rebound, "Origin": f"http://{rebound}"}
    try:
        page = requests.get(f"http://127.0.0.1:{port}/", headers={"Host": rebound}, timeout=10)
        posted = requests.post(
            f"http://127.0.0.1:{port}/regenerate",
            data={"source": SOURCE, "variant": "1024x1024"},
            headers=headers,
            timeout=10,
            allow_redirects=False,
        )
    finally:
        server.stop()

    assert page.status_code >= 400 and "X-Amz-Signature" not in page.text
    assert posted.status_code >= 400
    assert SOURCE + ".reframe.json" in deployed.keys("uploads/") and deployed.stats()["billed"] == paid


# -- 7. phantom spend -----------------------------------------------------------------------------------


def test_7_an_attempt_that_sends_nothing_spends_nothing(ideogram: Stack, aws_env: str):
    dynamodb = servers.client("dynamodb", aws_env)
    create_idempotency_table(dynamodb)
    ideogram.configure(IDEMPOTENCY_TABLE=TABLE, DAILY_BUDGET_USD="10")
    ideogram.put_image(SOURCE)
    ideogram.put(SOURCE + ".reframe.json", {**ONE, "style_reference_images": ["styles/missing.png"]})

    for _ in range(2):
        receive(ideogram)

    assert ideogram.stats()["billed"] == 0
    assert budget_spent(dynamodb) in ([], [0.0])


# -- 8. every AWS client is bound by the deadline ---------------------------------------------------------


def test_8_an_events_endpoint_that_never_answers_ends_within_the_invocation(
    deployed: Stack, aws_faults: AwsFaults, aws_env: str, logs: io.StringIO, capsys: pytest.CaptureFixture[str]
):
    bus = "reframe-notices"
    servers.client("events", aws_env).create_event_bus(Name=bus)
    deployed.configure(EVENT_BUS_NAME=bus, CALL_BUDGET_MS="3000", READ_TIMEOUT_S="3")
    deployed.put(SOURCE + ".reframe.json", ONE)
    aws_faults.hang("events", "PutEvents")

    started = time.monotonic()
    result = receive(deployed, timeout_s=20)
    took = time.monotonic() - started

    assert took < 20, took  # the invocation's own timeout (botocore's defaults: 60 s per attempt)
    assert result == OK  # the variants are made and paid: a lost notice does not send them round again
    assert statuses(deployed) == {"1024x1024": "created"}
    assert len(aws_faults.calls("events", "PutEvents")) == 1
    [line] = lines(logs, "notice not published")
    assert "time" in line["error"] or "timeout" in line["error"].lower()
    assert counted(capsys.readouterr().out, "NoticeFailures") == 1


def under_out(params: dict[str, Any]) -> bool:
    return str(params.get("Key", "")).startswith(OUT)


def test_8_an_s3_endpoint_that_never_answers_ends_within_the_invocation(deployed: Stack, aws_faults: AwsFaults):
    deployed.configure(CALL_BUDGET_MS="3000", READ_TIMEOUT_S="3")
    deployed.put(SOURCE + ".reframe.json", ONE)
    aws_faults.hang("s3", "PutObject", when=under_out)  # the kept generation, the variant, the manifest

    started = time.monotonic()
    first = receive(deployed, timeout_s=12)
    took = time.monotonic() - started

    assert took < 12, took  # each of the three writes alone would wait 3 x 2 s, and the manifest after them
    assert first != OK  # nothing could be written: the record goes back to SQS
    aws_faults.clear()
    # Refused while the first receive's in-progress lock lasts (its deadline: no time was left to lift it).
    wait_until(lambda: receive(deployed) == OK, 30, "a redelivery to succeed")
    assert statuses(deployed) == {"1024x1024": "created"}
    assert deployed.stats()["billed"] == 1  # the paid generation was collected again, not bought again


def test_8_a_dynamodb_endpoint_that_never_answers_ends_within_the_invocation(deployed: Stack, aws_faults: AwsFaults):
    deployed.configure(CALL_BUDGET_MS="3000", READ_TIMEOUT_S="3")
    deployed.put(SOURCE + ".reframe.json", ONE)
    for operation in ("GetItem", "PutItem", "UpdateItem", "DeleteItem", "Query"):
        aws_faults.hang("dynamodb", operation)

    started = time.monotonic()
    first = receive(deployed, timeout_s=10)
    took = time.monotonic() - started

    assert took < 10, took  # botocore's defaults: 60 s per attempt, up to 10 attempts
    assert first != OK  # the record goes back to SQS
    assert deployed.stats()["billed"] == 0  # no generation is bought without its guard's record


# -- 9. the first reservation of a UTC day respects the limit ---------------------------------------------


def test_9_a_budget_below_one_call_pays_nothing_even_on_a_fresh_day(deployed: Stack):
    deployed.configure(DAILY_BUDGET_USD="0.05")  # a Segmind DEFAULT call is estimated at $0.075
    deployed.put(SOURCE + ".reframe.json", ONE)

    assert receive(deployed) == OK

    (variant,) = deployed.read_json(OUT + "manifest.json")["variants"]
    assert (variant["status"], variant["error"]["code"]) == ("failed", "budget_exceeded")
    assert deployed.stats()["billed"] == 0
    assert [i.get("spent_usd", {}).get("N", "0") for i in table_items(deployed, "budget#")] in ([], ["0"])


# -- 11. a throttled slot release -------------------------------------------------------------------------


def slot_release(params: dict[str, Any]) -> bool:
    return str(params.get("UpdateExpression", "")).startswith("REMOVE holder")


def test_11_a_throttled_slot_release_is_retried_and_the_slot_is_free_after(deployed: Stack, aws_faults: AwsFaults):
    deployed.configure(PROVIDER_MAX_IN_FLIGHT="1")
    deployed.put(SOURCE + ".reframe.json", ONE)
    # More throttled attempts than botocore makes for one call (3; the old client's DynamoDB default: 10).
    aws_faults.fail("dynamodb", "UpdateItem", code=THROTTLED, times=11, when=slot_release)

    assert receive(deployed) == OK

    releases = aws_faults.calls("dynamodb", "UpdateItem")
    assert sum(slot_release(p) for p in releases) >= 2  # tried again after botocore gave up
    [slot] = table_items(deployed, "slot#")
    assert "lease_expires" not in slot and "holder" not in slot  # the holder was done: the lease ended


# -- minor: a throttled "written" journal state -------------------------------------------------------------


def written_state(params: dict[str, Any]) -> bool:
    return params.get("ExpressionAttributeValues", {}).get(":state") == {"S": "written"}


def test_a_throttled_written_state_does_not_say_failed_for_a_variant_that_exists(
    deployed: Stack, aws_faults: AwsFaults
):
    deployed.put(SOURCE + ".reframe.json", ONE)
    aws_faults.fail("dynamodb", "UpdateItem", code=THROTTLED, times=3, when=written_state)  # botocore's 3 attempts

    receive(deployed)

    assert any(k.startswith(OUT + "1024x1024.") for k in deployed.keys(OUT))
    assert statuses(deployed) == {"1024x1024": "created"}
    assert deployed.stats()["billed"] == 1
