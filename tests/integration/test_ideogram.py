"""REFRAME_PROVIDER=ideogram end to end: moto's S3 and the emulator's Ideogram endpoint (multipart, result URLs)."""

from __future__ import annotations

import json

from ..conftest import EMULATOR_API_KEY
from .conftest import Stack, s3_event, sqs_event

SOURCE = "uploads/campaign/poster.jpg"
OUT = "reframed/campaign/poster.jpg/"
ONE_TARGET = {"version": 1, "targets": [{"resolution": "1024x1024"}]}


def upload(stack: Stack, sidecar: dict) -> None:
    stack.put_image(SOURCE)
    stack.put(SOURCE + ".reframe.json", sidecar)


def variants(stack: Stack) -> list[dict]:
    return list(stack.read_json(OUT + "manifest.json")["variants"])


def test_fan_out_creates_exact_sizes_at_the_ideogram_price(ideogram: Stack):
    upload(
        ideogram,
        {
            "version": 1,
            "targets": [
                {"resolution": "1536x640"},
                {"size": "1200x628", "name": "og", "rendering_speed": "TURBO"},
                {"aspect_ratio": "9:16", "rendering_speed": "QUALITY"},
            ],
            "seed": 4242,
            "color_palette": {"name": "PASTEL"},
        },
    )
    result = ideogram.invoke(s3_event(SOURCE))

    assert [v["status"] for v in result["results"][0]["variants"]] == ["created"] * 3
    assert ideogram.image(OUT + "1536x640.jpg").size == (1536, 640)
    assert ideogram.image(OUT + "og.jpg").size == (1200, 628)  # reframed to 1344x704, then cropped
    assert ideogram.image(OUT + "736x1312.jpg").size == (736, 1312)
    records = {v["name"]: v for v in variants(ideogram)}
    assert {v["provider"] for v in records.values()} == {"ideogram"}
    # Ideogram's prices (pricing.DEFAULT_PRICES), not Segmind's 0.075 / 0.037 / 0.113.
    assert records["1536x640"]["cost_usd"] == 0.06
    assert records["og"]["cost_usd"] == 0.03
    assert records["736x1312"]["cost_usd"] == 0.09
    assert {v["seed"] for v in records.values()} == {4242}

    stats = ideogram.stats()
    assert {call["endpoint"] for call in stats["calls"]} == {"ideogram"}
    assert sorted(call["resolution"] for call in stats["calls"]) == ["1344x704", "1536x640", "736x1312"]
    assert stats["billed"] == 3
    assert stats["results_served"] == 3  # each expiring result URL fetched once


def test_redelivery_pays_nothing(ideogram: Stack):
    upload(ideogram, ONE_TARGET)
    ideogram.invoke(s3_event(SOURCE))
    again = ideogram.invoke(sqs_event(s3_event(SOURCE)))

    assert again == {"batchItemFailures": []}
    assert ideogram.stats()["billed"] == 1
    assert [v["status"] for v in variants(ideogram)] == ["existing"]


def test_price_table_override_applies_to_ideogram(ideogram: Stack):
    ideogram.configure(PRICE_TABLE=json.dumps({"ideogram": {"DEFAULT": 0.05}}))
    upload(ideogram, ONE_TARGET)
    ideogram.invoke(s3_event(SOURCE))
    assert variants(ideogram)[0]["cost_usd"] == 0.05


def test_unsafe_image_fails_for_good(ideogram: Stack):
    upload(ideogram, ONE_TARGET)
    ideogram.faults("unsafe")
    result = ideogram.invoke(sqs_event(s3_event(SOURCE)))

    assert result == {"batchItemFailures": []}  # not retried: the same request would be judged the same
    variant = variants(ideogram)[0]
    assert variant["status"] == "failed" and variant["error"]["code"] == "unsafe_image"
    assert "unsafe" in variant["error"]["message"]
    assert len(ideogram.stats()["calls"]) == 1
    assert ideogram.keys(OUT) == [OUT + "manifest.json"]


def test_rate_limits_and_server_errors_are_retried(ideogram: Stack):
    upload(ideogram, ONE_TARGET)
    ideogram.faults("429", "500", "ok")
    result = ideogram.invoke(sqs_event(s3_event(SOURCE)))

    assert result == {"batchItemFailures": []}
    variant = variants(ideogram)[0]
    assert variant["status"] == "created" and variant["attempts"] == 3
    assert [call["status"] for call in ideogram.stats()["calls"]] == [429, 500, 200]


def test_bad_key_sends_the_record_back_to_the_queue(ideogram: Stack):
    upload(ideogram, ONE_TARGET)
    ideogram.faults("401")
    result = ideogram.invoke(sqs_event(s3_event(SOURCE)))

    assert result == {"batchItemFailures": [{"itemIdentifier": "m-0"}]}
    variant = variants(ideogram)[0]
    assert variant["status"] == "failed" and variant["error"]["code"] == "http_401"
    assert len(ideogram.stats()["calls"]) == 1  # never retried in-process
    assert EMULATOR_API_KEY not in json.dumps(variant)


def test_style_reference_key_is_uploaded_as_a_file(ideogram: Stack):
    ideogram.put_image("styles/brand.png", "coffee.png")
    upload(ideogram, {**ONE_TARGET, "style_reference_images": ["styles/brand.png"]})
    ideogram.invoke(sqs_event(s3_event(SOURCE)))

    assert variants(ideogram)[0]["status"] == "created"
    (call,) = ideogram.stats()["calls"]
    assert call["status"] == 200 and call["style_references"] == 1


def test_missing_style_reference_fails_without_a_call(ideogram: Stack):
    upload(ideogram, {**ONE_TARGET, "style_reference_images": ["styles/missing.png"]})
    result = ideogram.invoke(sqs_event(s3_event(SOURCE)))

    assert result == {"batchItemFailures": []}
    variant = variants(ideogram)[0]
    assert variant["status"] == "failed" and variant["error"]["code"] == "bad_style_reference"
    assert ideogram.stats()["requests"] == 0
