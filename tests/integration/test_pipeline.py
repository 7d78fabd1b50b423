"""The pipeline end to end over real protocols: moto's S3 and the Segmind-compatible emulator."""

from __future__ import annotations

import json

import pytest

from .conftest import BUCKET, Stack, s3_event, sqs_event

SOURCE = "uploads/campaign/spring sale/café photo.jpg"
OUT = "reframed/campaign/spring sale/café photo.jpg/"
THREE_TARGETS = {
    "version": 1,
    "targets": [{"resolution": "1536x640"}, {"aspect_ratio": "9:16"}, {"size": "1200x628", "name": "og"}],
    "seed": 4242,
}


def upload(stack: Stack, sidecar: dict | None = THREE_TARGETS) -> None:
    stack.put_image(SOURCE)
    if sidecar is not None:
        stack.put(SOURCE + ".reframe.json", sidecar)


def test_s3_event_fans_out_one_call_per_target(stack: Stack):
    upload(stack)
    result = stack.invoke(s3_event(SOURCE))

    assert [v["status"] for v in result["results"][0]["variants"]] == ["created"] * 3
    assert stack.outputs(OUT) == sorted(
        OUT + name for name in ("1536x640.jpg", "736x1312.jpg", "og.jpg", "manifest.json")
    )
    assert stack.image(OUT + "1536x640.jpg").size == (1536, 640)
    assert stack.image(OUT + "736x1312.jpg").size == (736, 1312)
    assert stack.image(OUT + "og.jpg").size == (1200, 628)  # reframed to 1344x704, then cropped

    manifest = stack.read_json(OUT + "manifest.json")
    assert manifest["source"]["key"] == SOURCE and manifest["source"]["bucket"] == BUCKET
    assert manifest["config"] == {"from": "object", "key": SOURCE + ".reframe.json"}
    og = next(v for v in manifest["variants"] if v["name"] == "og")
    assert og["resolution"] == "1344x704" and (og["width"], og["height"]) == (1200, 628)
    assert og["provider"] == "segmind" and og["seed"] == 4242 and og["cost_usd"] == 0.075

    stats = stack.stats()
    assert stats["billed"] == 3
    generations = [call for call in stats["calls"] if call["resolution"]]  # not the async API's polls
    assert sorted(call["resolution"] for call in generations) == ["1344x704", "1536x640", "736x1312"]
    assert {call["seed"] for call in generations} == {4242}

    head = stack.s3.head_object(Bucket=BUCKET, Key=OUT + "og.jpg")
    assert head["ContentType"] == "image/jpeg"
    flagged = {"warnings"} if og["warnings"] else set()  # kept with the variant: a later run lists them too
    assert set(head["Metadata"]) == {"source-key", "source-etag", "params-hash", "generation", "seed", *flagged}
    assert head["Metadata"].get("warnings", "") == ",".join(og["warnings"])
    # The generation it was rendered from is kept as the provider returned it, tagged for the lifecycle rule.
    kept = f"{OUT}_generation-{head['Metadata']['generation']}.jpg"
    generation = stack.s3.head_object(Bucket=BUCKET, Key=kept)
    assert generation["Metadata"]["source-etag"] == head["Metadata"]["source-etag"]
    assert generation["Metadata"]["resolution"] == "1344x704"
    tags = stack.s3.get_object_tagging(Bucket=BUCKET, Key=kept)["TagSet"]
    assert tags == [{"Key": "reframe-kind", "Value": "generation"}]


def test_redelivery_pays_nothing(stack: Stack):
    upload(stack)
    stack.invoke(s3_event(SOURCE))
    again = stack.invoke(sqs_event(s3_event(SOURCE), s3_event(SOURCE)))

    assert again == {"batchItemFailures": []}
    assert stack.stats()["billed"] == 3
    manifest = stack.read_json(OUT + "manifest.json")
    assert [v["status"] for v in manifest["variants"]] == ["existing"] * 3


def test_sqs_batch_with_test_event_and_eventbridge_body(stack: Stack):
    upload(stack, {"version": 1, "targets": [{"resolution": "1024x1024"}]})
    other = "uploads/b.png"
    stack.put_image(other, "coffee.png")
    stack.put(other + ".reframe.json", {"version": 1, "targets": [{"aspect_ratio": "1:1"}]})
    eventbridge = {
        "version": "0",
        "detail-type": "Object Created",
        "source": "aws.s3",
        "detail": {"bucket": {"name": BUCKET}, "object": {"key": other}},
    }
    test_event = {"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": BUCKET}

    result = stack.invoke(sqs_event(test_event, s3_event(SOURCE), eventbridge))

    assert result == {"batchItemFailures": []}
    assert stack.image(OUT + "1024x1024.jpg").size == (1024, 1024)
    assert stack.image("reframed/b.png/1024x1024.jpg").size == (1024, 1024)
    assert stack.stats()["billed"] == 2


def test_direct_eventbridge_event(stack: Stack):
    upload(stack, {"version": 1, "targets": [{"resolution": "1152x896"}]})
    event = {
        "version": "0",
        "detail-type": "Object Created",
        "source": "aws.s3",
        "detail": {"bucket": {"name": BUCKET}, "object": {"key": SOURCE}},  # EventBridge keys are not URL-encoded
    }
    result = stack.invoke(event)
    assert result["results"][0]["action"] == "processed"
    assert stack.image(OUT + "1152x896.jpg").size == (1152, 896)


def test_invalid_sidecar_fails_in_the_manifest_without_a_call(stack: Stack):
    upload(stack, {"version": 1, "targets": [{"resolution": "1000x1000"}, {"size": "64x64", "name": "thumb"}]})
    result = stack.invoke(sqs_event(s3_event(SOURCE)))

    assert result == {"batchItemFailures": []}  # not retried: retrying cannot fix it
    manifest = stack.read_json(OUT + "manifest.json")
    assert [v["name"] for v in manifest["variants"]] == ["1000x1000", "thumb"]
    assert {v["status"] for v in manifest["variants"]} == {"failed"}
    assert manifest["error"]["code"] == "invalid_sidecar"
    assert "targets[0].resolution" in manifest["error"]["message"]
    assert stack.stats()["requests"] == 0


def test_sidecar_after_image(stack: Stack):
    upload(stack, sidecar=None)
    first = stack.invoke(s3_event(SOURCE))
    assert first["results"][0]["action"] == "unconfigured"
    assert stack.keys("reframed/") == []

    stack.put(SOURCE + ".reframe.json", {"version": 1, "targets": [{"resolution": "1024x1024"}]})
    second = stack.invoke(s3_event(SOURCE + ".reframe.json"))
    assert second["results"][0]["action"] == "processed"
    assert stack.outputs(OUT) == [OUT + "1024x1024.jpg", OUT + "manifest.json"]


def test_folder_default_and_deployment_default(stack: Stack):
    stack.put_image("uploads/campaign/a.jpg")
    stack.put("uploads/campaign/_reframe.json", {"version": 1, "targets": [{"resolution": "1280x800"}]})
    stack.put_image("uploads/other/b.jpg")
    stack.configure(DEFAULT_SIDECAR=json.dumps({"version": 1, "targets": [{"resolution": "800x1280"}]}))

    stack.invoke(s3_event("uploads/campaign/a.jpg"))
    stack.invoke(s3_event("uploads/other/b.jpg"))

    assert stack.read_json("reframed/campaign/a.jpg/manifest.json")["config"] == {
        "from": "folder",
        "key": "uploads/campaign/_reframe.json",
    }
    assert stack.read_json("reframed/other/b.jpg/manifest.json")["config"] == {"from": "default", "key": None}
    assert stack.image("reframed/other/b.jpg/800x1280.jpg").size == (800, 1280)


@pytest.mark.parametrize(
    "key",
    [
        "reframed/campaign/x.jpg/1024x1024.jpg",
        "reframed/campaign/x.jpg/manifest.json",
        "uploads/campaign/_reframe.json",
        "elsewhere/photo.jpg",
    ],
)
def test_no_recursion_on_outputs_sidecars_and_manifests(stack: Stack, key: str):
    stack.put_image("uploads/campaign/x.jpg")
    stack.put("uploads/campaign/_reframe.json", {"version": 1, "targets": [{"resolution": "1024x1024"}]})
    stack.put_image(key)
    result = stack.invoke(s3_event(key))
    assert result["results"][0]["action"] == "ignored"
    assert stack.stats()["requests"] == 0


def test_transient_errors_are_retried_then_succeed(stack: Stack):
    stack.configure(SEGMIND_API_MODE="sync")  # one request per attempt: the script maps to attempts
    upload(stack, {"version": 1, "targets": [{"resolution": "1024x1024"}]})
    stack.faults("429", "503", "garbage", "ok")
    result = stack.invoke(sqs_event(s3_event(SOURCE)))

    assert result == {"batchItemFailures": []}
    variant = stack.read_json(OUT + "manifest.json")["variants"][0]
    assert variant["status"] == "created" and variant["attempts"] == 4
    assert stack.stats()["billed"] == 1


def test_transient_errors_past_the_retries_go_back_to_the_queue(stack: Stack):
    upload(stack, {"version": 1, "targets": [{"resolution": "1024x1024"}]})
    stack.configure(MAX_ATTEMPTS="2")
    stack.faults("500", "502")
    result = stack.invoke(sqs_event(s3_event(SOURCE)))
    assert result == {"batchItemFailures": [{"itemIdentifier": "m-0"}]}
    variant = stack.read_json(OUT + "manifest.json")["variants"][0]
    assert variant["status"] == "failed" and variant["error"]["code"] == "http_502"

    # The redelivered message completes the work.
    assert stack.invoke(sqs_event(s3_event(SOURCE))) == {"batchItemFailures": []}
    assert stack.read_json(OUT + "manifest.json")["variants"][0]["status"] == "created"


@pytest.mark.parametrize(
    ("fault", "retried", "code"),
    [
        ("400", False, "http_400"),
        ("401", True, "http_401"),
        ("406", True, "http_406"),
        ("403", True, "http_403"),
    ],
)
def test_permanent_and_account_errors(stack: Stack, fault: str, retried: bool, code: str):
    upload(stack, {"version": 1, "targets": [{"resolution": "1024x1024"}]})
    stack.faults(fault)
    result = stack.invoke(sqs_event(s3_event(SOURCE)))

    assert bool(result["batchItemFailures"]) is retried
    variant = stack.read_json(OUT + "manifest.json")["variants"][0]
    assert variant["status"] == "failed" and variant["error"]["code"] == code
    assert len(stack.stats()["calls"]) == 1  # never retried in-process


def test_wrong_api_key_goes_back_to_the_queue(stack: Stack):
    upload(stack, {"version": 1, "targets": [{"resolution": "1024x1024"}]})
    stack.configure(SEGMIND_API_KEY="wrong-key-000")
    result = stack.invoke(sqs_event(s3_event(SOURCE)))
    assert result == {"batchItemFailures": [{"itemIdentifier": "m-0"}]}
    variant = stack.read_json(OUT + "manifest.json")["variants"][0]
    assert variant["error"]["code"] == "http_401"
    assert "wrong-key-000" not in json.dumps(stack.read_json(OUT + "manifest.json"))


def test_json_base64_answers_are_accepted(stack: Stack):
    upload(stack, {"version": 1, "targets": [{"resolution": "1024x1024"}]})
    stack.emulator_config(response_format="json-base64")
    stack.invoke(s3_event(SOURCE))
    assert stack.image(OUT + "1024x1024.jpg").size == (1024, 1024)


def test_deleted_source_is_skipped(stack: Stack):
    result = stack.invoke(sqs_event(s3_event("uploads/gone.jpg")))
    assert result == {"batchItemFailures": []}
    assert stack.stats()["requests"] == 0
