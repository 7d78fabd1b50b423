"""Exact-size crops over moto and the emulator: the crop goes around the source where the source check found
it, whenever a crop that keeps it whole exists, and the manifest says `source_cropped` when none does."""

from __future__ import annotations

import io
from typing import Any

from PIL import Image, ImageChops, ImageStat

from reframe_pipeline.domain.cropping import Box, crop_for
from reframe_pipeline.domain.resolutions import Size

from .conftest import BUCKET, Stack, s3_event, sqs_event

BANNER = {"preset": "linkedin-banner"}  # 1584x396 (4:1), cropped from a 1536x512 (3:1) generation
CANVAS, FINAL = Size(1536, 512), Size(1584, 396)


def made(stack: Stack, source: str, fault: str, target: dict[str, Any]) -> tuple[dict[str, Any], Image.Image]:
    stack.put_image(source)
    stack.put(source + ".reframe.json", {"version": 1, "targets": [target]})
    stack.faults(fault)
    assert stack.invoke(sqs_event(s3_event(source))) == {"batchItemFailures": []}
    out = "reframed/" + source.removeprefix("uploads/") + "/"
    (entry,) = stack.read_json(out + "manifest.json")["variants"]
    body = stack.s3.get_object(Bucket=BUCKET, Key=entry["generation_key"])["Body"].read()
    return entry, Image.open(io.BytesIO(body)).convert("RGB")


def variant(stack: Stack, entry: dict[str, Any]) -> Image.Image:
    body = stack.s3.get_object(Bucket=BUCKET, Key=entry["key"])["Body"].read()
    return Image.open(io.BytesIO(body)).convert("RGB")


def cropped(generation: Image.Image, window: Box) -> Image.Image:
    area = (window.x, window.y, window.x + window.width, window.y + window.height)
    return generation.resize(FINAL, Image.Resampling.LANCZOS, box=area)


def mean_difference(a: Image.Image, b: Image.Image) -> float:
    return sum(ImageStat.Stat(ImageChops.difference(a, b)).mean) / 3


def test_a_source_placed_low_is_kept_whole_by_moving_the_crop(stack: Stack):
    # The emulator's "offset" puts the photo low on the left: a centred 4:1 crop would cut its bottom rows.
    entry, generation = made(stack, "uploads/focus/low.jpg", "offset", {**BANNER, "focus": "top"})
    box = entry["source_box"]
    source = Box(box["x"], box["y"], box["width"], box["height"])
    assert source.y + source.height > crop_for(CANVAS, FINAL, "top").window.y + 384  # "top" alone would cut it
    window = crop_for(CANVAS, FINAL, "top", source).window
    assert window.y <= source.y and source.y + source.height <= window.y + window.height
    assert entry["warnings"] == []
    written = variant(stack, entry)
    assert written.size == FINAL
    # That crop, within the JPEG re-encoding's noise; the crop "top" alone would have taken is far off.
    assert mean_difference(written, cropped(generation, window)) < 2
    assert mean_difference(written, cropped(generation, crop_for(CANVAS, FINAL, "top").window)) > 10


def test_a_source_taller_than_any_crop_is_said_to_be_cropped(stack: Stack):
    # The plain reframe fits the photo to the canvas's full height: no 4:1 crop keeps its 512 rows.
    entry, _ = made(stack, "uploads/focus/tall.jpg", "ok", BANNER)
    assert entry["source_box"]["height"] > 400
    assert entry["warnings"] == ["source_cropped"]
    assert variant(stack, entry).size == FINAL
