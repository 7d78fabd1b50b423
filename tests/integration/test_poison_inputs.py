"""Hostile inputs through the real handler: each is refused once, with a manifest saying why, and
never sent back to the queue or to the provider."""

from __future__ import annotations

import pytest

from reframe_cli.cli import main

from .conftest import BUCKET, Stack, s3_event, sqs_event

# Nested far past the parser's recursion limit: json.loads raises RecursionError, not a decode error.
DEEP_ARRAYS = b"[" * 5000
DEEP_OBJECTS = b'{"a":' * 5000


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
    assert stack.keys("reframed/") == ["reframed/fine/photo.jpg/1024x1024.png", "reframed/fine/photo.jpg/manifest.json"]
    assert stack.stats()["billed"] == 1
