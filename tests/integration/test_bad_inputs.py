"""The bad-input corpus (tests/corpus/bad_inputs.json): every case gets a clear, specific answer,
no provider call, and no crash loop (nothing goes back to the queue)."""

from __future__ import annotations

import io
import json
import random
from pathlib import Path
from typing import Any

import pytest

from .conftest import IMAGES, Stack, s3_event, sqs_event
from .images import png_header_only

CORPUS = json.loads((Path(__file__).parents[1] / "corpus" / "bad_inputs.json").read_text())["cases"]
IMAGE_KEY = "uploads/corpus/photo.jpg"

OBJECTS = {
    "text": b"hello, this is a text file\n",
    "empty": b"",
    "svg": b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect width="10" height="10"/></svg>',
    "html": b"<!doctype html><html><body>not an image</body></html>",
    "pdf": b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog >>\nendobj\n",
    "random": random.Random(7).randbytes(4096),
    "truncated_png": (IMAGES / "coffee.png").read_bytes()[:300_000],
    "png_magic_only": b"\x89PNG\r\n\x1a\n" + b"\x00" * 16,
    "bomb_png": png_header_only(120_000, 100_000),
}
SIDECAR = {"version": 1, "targets": [{"resolution": "1024x1024"}]}


def test_the_corpus_is_large_and_unique():
    assert len(CORPUS) >= 40
    assert len({case["id"] for case in CORPUS}) == len(CORPUS)


def run_case(stack: Stack, case: dict[str, Any]) -> dict[str, Any]:
    kind = case["kind"]
    if kind == "sidecar":
        stack.put_image(IMAGE_KEY)
        raw = case["raw"].encode("latin-1") if "raw" in case else json.dumps(case["sidecar"]).encode()
        stack.put(IMAGE_KEY + ".reframe.json", raw)
        return dict(stack.invoke(s3_event(IMAGE_KEY))["results"][0])
    if kind == "object":
        if case["object"] != "deleted":
            stack.put(IMAGE_KEY, OBJECTS[case["object"]])
        stack.put(IMAGE_KEY + ".reframe.json", SIDECAR)
        return dict(stack.invoke(s3_event(IMAGE_KEY))["results"][0])
    if kind == "key":
        stack.put_image(case["key"])
        stack.put("uploads/_reframe.json", SIDECAR)
        return dict(stack.invoke(s3_event(case["key"]))["results"][0])
    body = case["body"]
    return stack.invoke(sqs_event(body if isinstance(body, str) else json.dumps(body)))


@pytest.mark.parametrize("case", CORPUS, ids=[case["id"] for case in CORPUS])
def test_bad_input(stack: Stack, case: dict[str, Any], logs: io.StringIO):
    stack.configure(REFRAME_PROVIDER="local")
    expect = case["expect"]

    result = run_case(stack, case)
    logged = logs.getvalue()

    if case["kind"] == "event":
        assert result == {"batchItemFailures": []}
        assert expect["log"] in logged
        return
    assert result["action"] == expect["action"]
    if expect["action"] == "processed":
        variant = result["variants"][0]
        assert variant["status"] == expect.get("variant_status", "created")
        if variant["status"] == "failed":  # found only when the pixels are decoded
            assert variant["error"]["code"] == expect["code"]
            assert expect["message"] in variant["error"]["message"]
        return
    assert expect["message"] in result["detail"]
    assert json.dumps(expect["message"])[1:-1] in logged  # said in the log, as the JSON line spells it
    if "code" in expect:
        manifest = stack.read_json(f"reframed/{IMAGE_KEY.removeprefix('uploads/')}/manifest.json")
        assert manifest["error"]["code"] == expect["code"]
        assert expect["message"] in manifest["error"]["message"]
        assert {v["status"] for v in manifest["variants"]} == {"failed"}
