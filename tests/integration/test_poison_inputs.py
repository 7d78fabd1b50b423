"""Hostile inputs through the real handler: each is refused once, with a manifest saying why, and
never sent back to the queue or to the provider."""

from __future__ import annotations

import json
from typing import Any

import pytest

from reframe_cli.cli import main
from reframe_pipeline import handler
from reframe_pipeline.adapters.s3_storage import S3Storage

from .conftest import BUCKET, Stack, s3_event, sqs_event

# Nested far past the parser's recursion limit: json.loads raises RecursionError, not a decode error.
DEEP_ARRAYS = b"[" * 5000
DEEP_OBJECTS = b'{"a":' * 5000
MiB = 1024 * 1024
ONE_TARGET = {"version": 1, "targets": [{"resolution": "1024x1024"}]}


def storages(stack: Stack) -> list[S3Storage]:
    """Every S3Storage the handler builds from now on: their ``bytes_read`` is what S3 served."""
    built: list[S3Storage] = []
    active = handler.pipeline()
    make = active.storage_for

    def recorded(bucket: str) -> Any:
        built.append(make(bucket))
        return built[-1]

    stack.monkeypatch.setattr(active, "storage_for", recorded)
    return built


def rejected(stack: Stack, key: str) -> dict[str, Any]:
    """The manifest of a source refused as unsupported: one failed entry, nothing sent to the provider."""
    assert stack.invoke(sqs_event(s3_event(key))) == {"batchItemFailures": []}
    manifest = stack.read_json(f"reframed/{key.removeprefix('uploads/')}/manifest.json")
    assert [v["status"] for v in manifest["variants"]] == ["failed"]
    assert manifest["error"]["code"] == "unsupported_image"
    assert stack.stats()["requests"] == 0
    return dict(manifest["error"])


@pytest.mark.parametrize("poison", [DEEP_ARRAYS, DEEP_OBJECTS], ids=["arrays", "objects"])
def test_deeply_nested_folder_sidecar_fails_the_image_once(stack: Stack, poison: bytes):
    stack.put("uploads/poison/_reframe.json", poison)
    stack.put_image("uploads/poison/photo.jpg")

    result = stack.invoke(sqs_event(s3_event("uploads/poison/photo.jpg")))

    assert result == {"batchItemFailures": []}
    manifest = stack.read_json("reframed/poison/photo.jpg/manifest.json")
    assert manifest["error"] == {"code": "invalid_sidecar", "message": "sidecar is nested too deeply"}
    assert [(v["name"], v["status"]) for v in manifest["variants"]] == [("*", "failed")]
    assert stack.stats()["requests"] == 0 and stack.stats()["billed"] == 0


def test_backfill_reports_a_deeply_nested_sidecar_as_invalid(stack: Stack, capsys: pytest.CaptureFixture[str]):
    stack.put("uploads/poison/_reframe.json", DEEP_ARRAYS)
    stack.put_image("uploads/poison/photo.jpg")
    stack.put_image("uploads/fine/photo.jpg")
    stack.put("uploads/fine/photo.jpg.reframe.json", {"version": 1, "targets": [{"resolution": "1024x1024"}]})

    code = main(["backfill", f"s3://{BUCKET}/uploads/"])
    out = capsys.readouterr().out

    assert code == 0
    assert "invalid: uploads/poison/photo.jpg: sidecar is nested too deeply" in out
    assert stack.outputs("reframed/") == [
        "reframed/fine/photo.jpg/1024x1024.jpg",
        "reframed/fine/photo.jpg/manifest.json",
    ]
    assert stack.stats()["billed"] == 1


def test_a_huge_object_with_a_jpeg_signature_is_refused_after_the_header_reads(stack: Stack):
    key = "uploads/huge/fake.jpg"
    stack.put(key, b"\xff\xd8\xff\xe0" + bytes(40_000_000))
    stack.put(key + ".reframe.json", ONE_TARGET)
    read = storages(stack)

    error = rejected(stack, key)

    assert (
        error["message"] == "the JPEG header does not parse in the first 1,048,576 bytes: refused without reading more"
    )
    assert sum(s.bytes_read for s in read) < 2 * MiB


def test_an_object_over_max_input_bytes_is_refused_unread(stack: Stack):
    stack.configure(MAX_INPUT_BYTES="500000")
    key = "uploads/big/astronaut.png"  # 791,555 bytes, a valid PNG
    stack.put_image(key, "astronaut.png")
    stack.put(key + ".reframe.json", ONE_TARGET)
    read = storages(stack)

    error = rejected(stack, key)

    assert error["message"] == (
        "the object is 791,555 bytes, over the limit of 500,000 (setting MAX_INPUT_BYTES): refused without reading it"
    )
    # The sidecar and the first header read (started with the lookups, before the size is known).
    assert sum(s.bytes_read for s in read) <= 64 * 1024 + len(json.dumps(ONE_TARGET))


def test_a_broken_header_is_described_without_object_reprs(stack: Stack):
    key = "uploads/broken/fake.jpg"
    stack.put(key, b"\xff\xd8\xff\xe0" + bytes(1000))
    stack.put(key + ".reframe.json", ONE_TARGET)

    error = rejected(stack, key)

    assert error["message"] == "the JPEG header does not parse: not a readable file of that format"
