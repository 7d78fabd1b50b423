"""``reframe backfill`` against moto's S3 and SQS, with the emulator as the provider."""

from __future__ import annotations

import json

import pytest

from reframe_cli.cli import main
from reframe_local import servers
from reframe_pipeline.adapters.inbound.s3_events import parse_sqs_body

from .conftest import BUCKET, IMAGES, Stack, s3_event

TWO_TARGETS = {"version": 1, "targets": [{"resolution": "1536x640"}, {"preset": "instagram-story"}]}
ONE_QUALITY_TARGET = {"version": 1, "targets": [{"aspect_ratio": "9:16", "rendering_speed": "QUALITY"}]}
# Spaces, '+', '%', non-ASCII: S3 notifications carry keys URL-encoded.
SPECIAL = "uploads/cfg/spring sale+50%/café ünï.jpg"
FOLDER_IMAGE = "uploads/cfg/plain.png"
OWN_SIDECAR = "uploads/own.jpg"
UNCONFIGURED = "uploads/loose/none.png"
INVALID = "uploads/broken.png"
URL = f"s3://{BUCKET}/uploads/"


@pytest.fixture
def bucket(stack: Stack) -> Stack:
    """Three configured images (five variants), one without config, one with an invalid sidecar,
    plus an earlier run's outputs and a manifest, which are not images."""
    stack.put("uploads/cfg/_reframe.json", TWO_TARGETS)
    stack.put_image(SPECIAL)
    stack.put_image(FOLDER_IMAGE, "coffee.png")
    stack.put_image(OWN_SIDECAR)
    stack.put(OWN_SIDECAR + ".reframe.json", ONE_QUALITY_TARGET)
    stack.put_image(UNCONFIGURED, "chelsea.png")
    stack.put_image(INVALID, "astronaut.png")
    stack.put(INVALID + ".reframe.json", {"version": 1, "targets": [{"resolution": "1x1"}]})
    stack.put("reframed/old/x.png/1536x640.jpg", b"not scanned")
    stack.put("uploads/cfg/manifest.json", {"not": "an image"})
    return stack


def backfill(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, Report, str]:
    code = main(["backfill", URL, *args])
    captured = capsys.readouterr()
    return code, Report(captured.out), captured.err


class Report:
    """The printed survey: counts by label, cost rows by provider."""

    def __init__(self, out: str) -> None:
        self.out = out
        self.lines = [line.strip() for line in out.splitlines()]

    def count(self, label: str) -> int:
        return int(next(line for line in self.lines if line.rsplit(maxsplit=1)[0] == label).split()[-1])

    def costs(self, provider: str) -> list[str]:
        return next(line for line in self.lines if line.startswith(provider + " ")).removeprefix(provider).split()


def test_dry_run_counts_and_estimates_without_writing_or_calling(bucket: Stack, capsys):
    before = bucket.keys()
    code, report, _ = backfill(capsys, "--dry-run")

    assert code == 0
    found = [report.count(label) for label in ("images found", "unconfigured", "invalid config", "configured")]
    assert found == [5, 1, 1, 3]
    assert [report.count(label) for label in ("variants planned", "already present", "missing")] == [5, 0, 5]
    assert [report.count(label) for label in ("paid generations", "free re-renders")] == [5, 0]
    assert report.count("images needing work") == 3
    # Four DEFAULT variants and one QUALITY, per provider; the one in use marked.
    assert report.costs("segmind") == ["*", "0.000", "0.300", "0.113", "0.413"]
    assert report.costs("ideogram") == ["0.000", "0.240", "0.090", "0.330"]
    assert report.costs("local") == ["0.000", "0.000", "0.000", "0.000"]
    assert f"invalid: {INVALID}: targets[0].resolution: '1x1' is not one of the 69" in report.out
    assert bucket.keys() == before
    assert bucket.stats()["requests"] == 0


def test_a_run_produces_the_missing_variants_and_is_resumable(bucket: Stack, capsys):
    code, report, err = backfill(capsys)
    assert code == 0, err
    assert "processed 3 image(s): 5 created" in report.out
    assert "3/3" in err  # the progress line
    assert bucket.stats()["billed"] == 5
    out_special = "reframed/cfg/spring sale+50%/café ünï.jpg/"
    assert bucket.outputs(out_special) == [
        out_special + n for n in ("1536x640.jpg", "instagram-story.jpg", "manifest.json")
    ]
    assert bucket.image(out_special + "instagram-story.jpg").size == (1080, 1920)
    assert bucket.outputs("reframed/own.jpg/") == ["reframed/own.jpg/736x1312.jpg", "reframed/own.jpg/manifest.json"]
    assert bucket.keys("reframed/loose/") == [] and bucket.keys("reframed/broken.png/") == []

    _, report, _ = backfill(capsys, "--dry-run")
    assert [report.count(label) for label in ("already present", "missing", "images needing work")] == [5, 0, 0]
    assert report.costs("segmind")[-1] == "0.000"

    # An interrupted backfill: one variant lost. Running again makes only that one, collected from the
    # result the provider still holds: nothing is paid again.
    bucket.s3.delete_object(Bucket=BUCKET, Key="reframed/cfg/plain.png/1536x640.jpg")
    code, report, _ = backfill(capsys)
    assert code == 0 and report.count("missing") == 1
    assert bucket.stats()["billed"] == 5
    assert "reframed/cfg/plain.png/1536x640.jpg" in bucket.keys("reframed/cfg/plain.png/")

    # A new output format for the folder default: missing again, but re-rendered from the kept generations.
    bucket.put("uploads/cfg/_reframe.json", {**TWO_TARGETS, "output": {"format": "webp"}})
    _, report, _ = backfill(capsys, "--dry-run")
    assert [report.count(label) for label in ("missing", "paid generations", "free re-renders")] == [4, 0, 4]
    assert report.costs("segmind")[-1] == "0.000"
    code, report, _ = backfill(capsys)
    assert code == 0 and bucket.stats()["billed"] == 5
    assert bucket.image(out_special + "instagram-story.webp").size == (1080, 1920)

    # Another provider means new pixels: every variant is missing again, at that provider's prices, and the
    # survey says why.
    _, report, _ = backfill(capsys, "--dry-run", "--provider", "local")
    assert report.count("missing") == 5
    assert report.costs("local")[0] == "*"
    assert "warning: 5 missing variant(s) were made by segmind, not by local (the configured provider)" in report.out


def test_queue_mode_sends_one_notification_per_image(bucket: Stack, capsys, aws_env: str):
    sqs = servers.client("sqs", aws_env)
    queue_url = sqs.create_queue(QueueName="reframe-backfill")["QueueUrl"]
    for index in range(12):  # more than one send_message_batch
        bucket.put_image(f"uploads/cfg/many/{index:02}.jpg")

    code, report, _ = backfill(capsys, "--dry-run", "--queue", queue_url)
    assert code == 0 and report.count("images needing work") == 15
    assert receive_all(sqs, queue_url) == []

    code, report, err = backfill(capsys, "--queue", queue_url)
    assert code == 0, err
    messages = receive_all(sqs, queue_url)
    events = [event for body in messages for event in parse_sqs_body(body)]
    assert len(messages) == len(events) == 15
    expected = {SPECIAL, FOLDER_IMAGE, OWN_SIDECAR} | {f"uploads/cfg/many/{index:02}.jpg" for index in range(12)}
    assert {event.key for event in events} == expected
    assert {(event.bucket, event.action) for event in events} == {(BUCKET, "created")}
    raw = next(json.loads(body) for body in messages if "caf" in body)["Records"][0]
    assert raw["s3"]["object"]["key"] == "uploads/cfg/spring+sale%2B50%25/caf%C3%A9+%C3%BCn%C3%AF.jpg"
    assert raw["eventSource"] == "aws:s3" and raw["eventName"].startswith("ObjectCreated")
    # The deployed pipeline does the work: nothing was produced here.
    assert bucket.keys("reframed/cfg/") == [] and bucket.stats()["requests"] == 0


def receive_all(sqs, queue_url: str) -> list[str]:
    bodies: list[str] = []
    while True:
        response = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
        batch = response.get("Messages", [])
        if not batch:
            return bodies
        bodies += [message["Body"] for message in batch]
        sqs.delete_message_batch(
            QueueUrl=queue_url,
            Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(batch)],
        )


def test_a_dry_run_lists_each_image_that_needs_work_and_what_it_lacks(bucket: Stack, capsys):
    bucket.invoke(s3_event(OWN_SIDECAR))  # made already: not listed

    code, report, _ = backfill(capsys, "--dry-run")

    assert code == 0 and report.count("images needing work") == 2
    listed = [line for line in report.lines if line.startswith("needs work: ")]
    assert listed == [
        f"needs work: {FOLDER_IMAGE}: 1536x640, instagram-story",
        f"needs work: {SPECIAL}: 1536x640, instagram-story",
    ]


def test_an_upload_already_rejected_as_not_an_image_is_skipped(bucket: Stack, capsys):
    bucket.put("uploads/cfg/notes.jpg", b"meeting notes, not a photo")
    bucket.invoke(s3_event("uploads/cfg/notes.jpg"))
    assert bucket.read_json("reframed/cfg/notes.jpg/manifest.json")["error"]["code"] == "unsupported_image"

    code, report, _ = backfill(capsys, "--dry-run")

    assert code == 0
    assert [report.count(label) for label in ("images found", "rejected, not images", "configured")] == [6, 1, 3]
    assert report.count("images needing work") == 3  # the three configured images, not the text file
    assert any(line.startswith("rejected, skipped: uploads/cfg/notes.jpg: ") for line in report.lines)
    assert not any("notes.jpg" in line for line in report.lines if line.startswith("needs work: "))

    bucket.put("uploads/cfg/notes.jpg", (IMAGES / "rocket.jpg").read_bytes())  # an image now: new ETag, work again
    _, report, _ = backfill(capsys, "--dry-run")
    assert (report.count("rejected, not images"), report.count("images needing work")) == (0, 4)


def test_variants_made_by_another_provider_are_named_in_a_warning(bucket: Stack, capsys):
    bucket.configure(REFRAME_PROVIDER="local")  # made with the local engine, as `reframe serve` does
    bucket.invoke(s3_event(OWN_SIDECAR))
    bucket.configure(REFRAME_PROVIDER="segmind")

    _, report, _ = backfill(capsys, "--dry-run")

    assert report.count("missing") == 5  # the local engine's variant is not Segmind's: priced again
    [warning] = [line for line in report.lines if line.startswith("warning: ")]
    assert warning == (
        "warning: 1 missing variant(s) were made by local, not by segmind (the configured provider): they count as"
        " missing and would be made and paid for again; --provider local surveys against local"
    )
    _, report, _ = backfill(capsys, "--dry-run", "--provider", "local")
    assert not any(line.startswith("warning: ") for line in report.lines)
