"""Delivery over moto's server (S3 over HTTP) and the emulator: deliverables in a second bucket at the key
template's keys, with their Content-Type and Cache-Control; every format and width from one paid generation
(the emulator's ledger); nothing left behind in either bucket; an output bucket that does not exist yet
fails the record, which the retry finishes without paying again. Provenance read back with exiftool."""

from __future__ import annotations

import io
from typing import Any

import pytest
from PIL import Image

from ..exiftool import needs_exiftool, read_tags
from .conftest import BUCKET, Stack, s3_event, sqs_event

OUTPUT = "cdn-assets"
SOURCE = "uploads/shoot/hero.jpg"
STATE = "reframed/shoot/hero.jpg/"
SIDECAR = {
    "version": 1,
    "targets": [{"size": "1200x628", "name": "og", "widths": [600]}, {"aspect_ratio": "9:16", "name": "story"}],
    "output": {"formats": ["avif", "webp", "jpeg"], "quality": 80},
}
TEMPLATE = "img/{dir}/{stem}/{name}-{width}w.{hash}.{ext}"


@pytest.fixture
def delivery(stack: Stack) -> Stack:
    stack.s3.create_bucket(Bucket=OUTPUT)
    stack.configure(
        OUTPUT_BUCKET=OUTPUT,
        OUTPUT_KEY_TEMPLATE=TEMPLATE,
        PUBLIC_BASE_URL="https://cdn.example.com",
        SOURCE_CHECK="off",
    )
    return stack


def delivered(stack: Stack) -> list[str]:
    pages = stack.s3.get_paginator("list_objects_v2").paginate(Bucket=OUTPUT)
    return sorted(item["Key"] for page in pages for item in page.get("Contents", []))


def upload(stack: Stack, sidecar: dict[str, Any] = SIDECAR) -> dict[str, Any]:
    stack.put_image(SOURCE)
    stack.put(SOURCE + ".reframe.json", sidecar)
    stack.invoke(s3_event(SOURCE))
    return stack.read_json(STATE + "manifest.json")


def test_deliverables_in_the_second_bucket_with_their_headers(delivery: Stack) -> None:
    manifest = upload(delivery)
    assert delivery.stats()["billed"] == 2  # 2 generations, 9 deliverables
    keys = [r["key"] for v in manifest["variants"] for r in v["renditions"]]
    assert len(keys) == 9 and delivered(delivery) == sorted(keys)
    assert all(key.startswith("img/shoot/hero/") for key in keys)
    assert delivery.outputs(STATE) == [STATE + "manifest.json"]  # the state stays private in the source bucket
    assert manifest["output_bucket"] == OUTPUT
    for variant in manifest["variants"]:
        for rendition in variant["renditions"]:
            head = delivery.s3.head_object(Bucket=OUTPUT, Key=rendition["key"])
            assert head["ContentType"] == f"image/{rendition['format']}"
            assert head["CacheControl"] == "public, max-age=31536000, immutable"
            assert head["ContentLength"] == rendition["bytes"]
            body = delivery.s3.get_object(Bucket=OUTPUT, Key=rendition["key"])["Body"].read()
            assert Image.open(io.BytesIO(body)).size == (rendition["width"], rendition["height"])
            assert rendition["url"] == f"https://cdn.example.com/{rendition['key']}"
    og = next(v for v in manifest["variants"] if v["name"] == "og")
    assert og["srcset"]["webp"].endswith(" 600w") and ", " in og["srcset"]["webp"]


def test_a_change_of_formats_is_free_and_leaves_no_orphan(delivery: Stack) -> None:
    upload(delivery)
    changed = {**SIDECAR, "output": {"formats": ["jpeg"]}, "targets": SIDECAR["targets"][:1], "prune": True}
    manifest = upload(delivery, changed)
    (og,) = manifest["variants"]
    assert (og["status"], og["rendered_from_generation"], og["cost_usd"]) == ("created", True, 0.0)
    assert delivery.stats()["billed"] == 2  # nothing more paid
    assert delivered(delivery) == sorted(r["key"] for r in og["renditions"])


def test_deleting_the_source_empties_both_buckets_of_it(delivery: Stack) -> None:
    upload(delivery)
    delivery.s3.delete_object(Bucket=BUCKET, Key=SOURCE)
    delivery.invoke(s3_event(SOURCE, "ObjectRemoved:Delete"))
    assert delivered(delivery) == [] and delivery.keys(STATE) == []


def test_an_output_bucket_that_is_missing_is_retried_without_paying_twice(stack: Stack) -> None:
    stack.configure(OUTPUT_BUCKET=OUTPUT, OUTPUT_KEY_TEMPLATE=TEMPLATE, SOURCE_CHECK="off")
    stack.put_image(SOURCE)
    stack.put(SOURCE + ".reframe.json", SIDECAR)
    result = stack.invoke(sqs_event(s3_event(SOURCE)))
    assert result["batchItemFailures"] == [{"itemIdentifier": "m-0"}]  # back to the queue
    manifest = stack.read_json(STATE + "manifest.json")
    errors = {v["error"]["code"] for v in manifest["variants"]}
    assert errors == {"bucket_unwritable"}
    assert "cannot write to bucket 'cdn-assets' (NoSuchBucket" in manifest["variants"][0]["error"]["message"]
    assert stack.stats()["billed"] == 2
    stack.s3.create_bucket(Bucket=OUTPUT)  # the bucket fixed; the record comes back
    assert stack.invoke(sqs_event(s3_event(SOURCE)))["batchItemFailures"] == []
    manifest = stack.read_json(STATE + "manifest.json")
    assert {(v["status"], v["rendered_from_generation"]) for v in manifest["variants"]} == {("created", True)}
    assert stack.stats()["billed"] == 2  # the kept generations rendered again: nothing paid twice
    assert len(delivered(stack)) == 9


@needs_exiftool
def test_provenance_survives_the_optimizers(delivery: Stack, tmp_path: Any) -> None:
    manifest = upload(delivery, {**SIDECAR, "output": {"formats": ["jpeg", "png"]}})
    for rendition in manifest["variants"][0]["renditions"]:
        body = delivery.s3.get_object(Bucket=OUTPUT, Key=rendition["key"])["Body"].read()
        tags = read_tags(body, tmp_path)
        assert tags["XMP-iptcExt:DigitalSourceType"].endswith("compositeWithTrainedAlgorithmicMedia"), rendition
        assert "Warning" not in tags
        if rendition["format"] == "jpeg":
            assert Image.open(io.BytesIO(body)).info.get("progressive")  # through mozjpeg
