"""Upload order over moto's S3 and SQS and the emulator: an image uploaded a moment before its sidecar waits for
it (its record back in the queue for the rest of SIDECAR_WAIT_S) and is paid for once, by the sidecar's targets;
a sidecar uploaded before its image waits for the image; every variant file stays in its source's manifest."""

from __future__ import annotations

import io
import json
import time
from typing import Any

import pytest

from reframe_local import servers

from .conftest import Stack, s3_event, sqs_event
from .test_failure_logs import lines

IMAGE = "uploads/order/photo.jpg"
OUT = "reframed/order/photo.jpg/"
FOLDER_DEFAULT = {"version": 1, "targets": [{"resolution": "1536x640"}, {"size": "64x64", "name": "thumb"}]}
SIDECAR = {"version": 1, "targets": [{"size": "1200x628", "name": "og"}]}
WAIT_S = 3


class Queue:
    """A real queue on moto: a message is received and handed to the handler as Lambda's poller would."""

    def __init__(self, stack: Stack, aws_env: str) -> None:
        self.stack = stack
        self.sqs = servers.client("sqs", aws_env)
        self.url = self.sqs.create_queue(QueueName="order", Attributes={"VisibilityTimeout": "600"})["QueueUrl"]
        attributes = self.sqs.get_queue_attributes(QueueUrl=self.url, AttributeNames=["QueueArn"])["Attributes"]
        self.arn = attributes["QueueArn"]

    def send(self, key: str) -> None:
        self.sqs.send_message(QueueUrl=self.url, MessageBody=json.dumps(s3_event(key)))

    def receive(self, wait_s: int = 0) -> list[dict[str, Any]]:
        answer = self.sqs.receive_message(QueueUrl=self.url, WaitTimeSeconds=wait_s, AttributeNames=["All"])
        return list(answer.get("Messages", []))

    def deliver(self, message: dict[str, Any]) -> dict[str, Any]:
        """The handler's answer to the batch of this one message; a message it did not fail is deleted."""
        event = sqs_event(message["Body"])
        record = event["Records"][0]
        record.update(messageId=message["MessageId"], receiptHandle=message["ReceiptHandle"], eventSourceARN=self.arn)
        record["attributes"] = message["Attributes"]
        result = self.stack.invoke(event)
        if not result["batchItemFailures"]:
            self.sqs.delete_message(QueueUrl=self.url, ReceiptHandle=message["ReceiptHandle"])
        return result


@pytest.fixture
def queue(stack: Stack, aws_env: str) -> Queue:
    stack.configure(SIDECAR_WAIT_S=str(WAIT_S))
    stack.put("uploads/order/_reframe.json", FOLDER_DEFAULT)
    return Queue(stack, aws_env)


def test_an_image_then_its_sidecar_a_moment_later_pays_only_for_the_sidecar(
    stack: Stack, queue: Queue, logs: io.StringIO
):
    stack.put_image(IMAGE)
    queue.send(IMAGE)
    [image_message] = queue.receive()
    uploaded = time.time()

    # Seconds old, no sidecar of its own: it goes back to the queue instead of being made from the folder default.
    assert queue.deliver(image_message) == {"batchItemFailures": [{"itemIdentifier": image_message["MessageId"]}]}
    assert stack.stats()["billed"] == 0 and stack.keys("reframed/") == []
    [waiting] = lines(logs, "waiting for its own sidecar")
    assert waiting["level"] == "INFO" and 0 < waiting["retry_after_s"] <= WAIT_S
    assert lines(logs, "record failed: it will be retried") == []  # a wait is not a failure

    stack.put(IMAGE + ".reframe.json", SIDECAR)  # the sidecar a moment later: its own event decides
    queue.send(IMAGE + ".reframe.json")
    [sidecar_message] = queue.receive()
    assert queue.deliver(sidecar_message) == {"batchItemFailures": []}
    assert stack.stats()["billed"] == 1

    # The image's record comes back once its wait is over (not after the queue's 600 s) and finds its variant made.
    [again] = queue.receive(wait_s=WAIT_S + 5)
    assert again["MessageId"] == image_message["MessageId"]
    assert time.time() - uploaded < WAIT_S + 3
    assert queue.deliver(again) == {"batchItemFailures": []}
    manifest = stack.read_json(OUT + "manifest.json")
    assert manifest["config"] == {"from": "object", "key": IMAGE + ".reframe.json"}
    assert [(v["name"], v["status"]) for v in manifest["variants"]] == [("og", "existing")]
    assert stack.stats()["billed"] == 1  # nothing paid for the folder default, nothing paid twice
    assert stack.outputs("reframed/") == [OUT + "manifest.json", OUT + "og.jpg"]


def test_an_image_whose_sidecar_never_comes_gets_the_folder_default_after_the_wait(stack: Stack, queue: Queue):
    stack.put_image(IMAGE)
    queue.send(IMAGE)
    [message] = queue.receive()
    assert queue.deliver(message)["batchItemFailures"]

    [again] = queue.receive(wait_s=WAIT_S + 5)
    assert queue.deliver(again) == {"batchItemFailures": []}
    manifest = stack.read_json(OUT + "manifest.json")
    assert manifest["config"]["from"] == "folder"
    assert sorted(v["name"] for v in manifest["variants"]) == ["1536x640", "thumb"]
    assert stack.stats()["billed"] == 2


def test_an_image_with_its_own_sidecar_does_not_wait(stack: Stack, queue: Queue):
    stack.put(IMAGE + ".reframe.json", SIDECAR)
    stack.put_image(IMAGE)
    queue.send(IMAGE)
    [message] = queue.receive()
    assert queue.deliver(message) == {"batchItemFailures": []}
    assert [v["status"] for v in stack.read_json(OUT + "manifest.json")["variants"]] == ["created"]


def test_no_wait_with_sidecar_wait_zero(stack: Stack, queue: Queue):
    stack.configure(SIDECAR_WAIT_S="0")
    stack.put_image(IMAGE)
    assert stack.invoke(sqs_event(s3_event(IMAGE))) == {"batchItemFailures": []}
    assert stack.read_json(OUT + "manifest.json")["config"]["from"] == "folder"


def test_a_sidecar_before_its_image_is_waiting_for_the_image(stack: Stack, logs: io.StringIO):
    stack.put(IMAGE + ".reframe.json", SIDECAR)

    result = stack.invoke(s3_event(IMAGE + ".reframe.json"))

    [summary] = result["results"]
    assert (summary["action"], summary["detail"]) == ("waiting", "waiting for the image")
    [line] = lines(logs, "waiting for the image")
    assert line["level"] == "INFO"
    assert lines(logs, "skipped: the source no longer exists") == []
    assert stack.keys("reframed/") == []

    stack.put_image(IMAGE)  # the image's own event finds the sidecar
    stack.invoke(s3_event(IMAGE))
    assert stack.read_json(OUT + "manifest.json")["config"]["from"] == "object"


def test_variants_of_targets_no_longer_configured_are_listed_until_pruned(stack: Stack):
    """Made from the folder default (no wait), then re-planned by a sidecar: the folder default's files stay in
    the manifest, marked as no longer configured; the sidecar's `prune` deletes them and they leave the manifest."""
    stack.put("uploads/order/_reframe.json", FOLDER_DEFAULT)
    stack.put_image(IMAGE)
    stack.invoke(s3_event(IMAGE))
    stack.put(IMAGE + ".reframe.json", SIDECAR)

    stack.invoke(s3_event(IMAGE + ".reframe.json"))

    manifest = stack.read_json(OUT + "manifest.json")
    listed = {v["key"]: v["status"] for v in manifest["variants"]}
    assert listed == {
        OUT + "og.jpg": "created",
        OUT + "1536x640.jpg": "unconfigured",
        OUT + "thumb.jpg": "unconfigured",
    }
    files = [key for key in stack.outputs(OUT) if not key.endswith("manifest.json")]
    assert sorted(listed) == files  # every variant file is in the manifest

    stack.put(IMAGE + ".reframe.json", {**SIDECAR, "prune": True})
    stack.invoke(s3_event(IMAGE + ".reframe.json"))

    manifest = stack.read_json(OUT + "manifest.json")
    assert [(v["key"], v["status"]) for v in manifest["variants"]] == [(OUT + "og.jpg", "existing")]
    assert stack.outputs(OUT) == [OUT + "manifest.json", OUT + "og.jpg"]
