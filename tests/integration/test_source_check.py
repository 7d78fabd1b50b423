"""SOURCE_CHECK over moto's S3 and the emulator: the emulator repaints the middle of the source, or places it
off-centre or smaller; the handler finds where it went (within a few pixels) and flags, or retries, a repaint."""

from __future__ import annotations

import json
from typing import Any

import pytest
from PIL import Image

from reframe_local import servers
from reframe_local.emulator.api import placed_box
from reframe_pipeline.adapters.s3_storage import S3Storage
from reframe_pipeline.application.deadline import Deadline
from reframe_pipeline.composition import build_pipeline
from reframe_pipeline.domain.events import ObjectEvent
from reframe_pipeline.domain.pricing import DEFAULT_PRICES
from reframe_pipeline.domain.resolutions import Size
from reframe_pipeline.settings import Settings

from .conftest import BUCKET, IMAGES, Stack, s3_event, sqs_event

SAMPLES = ["astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg"]
RESOLUTION = Size(1536, 640)
TARGETS = {"version": 1, "targets": [{"resolution": str(RESOLUTION)}]}
# Of 1536: under 1 %. The width is the least precise: the local engine feathers the source's edges into the fill.
TOLERANCE_PX = 10


def reframed(stack: Stack, name: str, fault: str) -> dict[str, Any]:
    """The manifest entry of ``name`` reframed with the emulator's ``fault`` on its one call."""
    source = f"uploads/check/{fault}/{name}"
    stack.put_image(source, name)
    stack.put(source + ".reframe.json", TARGETS)
    stack.faults(fault)
    assert stack.invoke(sqs_event(s3_event(source))) == {"batchItemFailures": []}
    (entry,) = stack.read_json(f"reframed/check/{fault}/{name}/manifest.json")["variants"]
    assert entry["status"] == "created"
    return dict(entry)


def off_by(entry: dict[str, Any], name: str, fault: str | None) -> int:
    with Image.open(IMAGES / name) as image:
        expected = placed_box(Size(*image.size), RESOLUTION, fault)
    box = entry["source_box"]
    found = (box["x"], box["y"], box["width"], box["height"])
    return max(abs(a - b) for a, b in zip(found, expected, strict=True))


def generations(stack: Stack) -> int:
    """The generations the emulator was asked for (not the polls and downloads of their results)."""
    return sum(1 for call in stack.stats()["calls"] if call["endpoint"] == "segmind-v2")


def metric(printed: str, name: str) -> float:
    blobs = [json.loads(line) for line in printed.splitlines() if line.startswith('{"_aws"')]
    return sum(sum(blob[name]) if isinstance(blob[name], list) else blob[name] for blob in blobs if name in blob)


@pytest.mark.parametrize("name", SAMPLES)
def test_the_source_placed_as_the_local_engine_does_scores_about_one_where_it_is(stack: Stack, name: str):
    entry = reframed(stack, name, "ok")
    assert entry["source_match"] > 0.95
    assert entry["warnings"] == []
    assert off_by(entry, name, None) <= TOLERANCE_PX


@pytest.mark.parametrize("name", SAMPLES)
@pytest.mark.parametrize("fault", ["offset", "scaled"])
def test_a_source_placed_off_centre_or_smaller_is_located_within_a_few_pixels(stack: Stack, name: str, fault: str):
    entry = reframed(stack, name, fault)
    assert off_by(entry, name, fault) <= TOLERANCE_PX
    assert entry["source_match"] > 0.9 and entry["warnings"] == []  # moved is not altered


@pytest.mark.parametrize("name", SAMPLES)
def test_a_repainted_centre_is_kept_and_flagged(stack: Stack, name: str, capsys: pytest.CaptureFixture[str]):
    entry = reframed(stack, name, "repaint")
    assert entry["source_match"] < 0.85
    assert entry["warnings"] == ["source_altered"]
    assert entry["attempts"] == 1 and generations(stack) == 1
    assert metric(capsys.readouterr().out, "SourceAltered") == 1


@pytest.mark.parametrize("name", SAMPLES)
def test_the_emulators_fast_render_keeps_the_source_where_the_reframe_does(stack: Stack, name: str):
    """The benchmarks' render: flat margins, the source centred and scaled to fit, so a check of it does what it
    does on a faithful result (not a search of a picture that lost its source), and a repaint is still flagged."""
    stack.emulator_config(render="fast", image_format="jpeg")
    intact = reframed(stack, name, "ok")
    assert intact["source_match"] > 0.95 and intact["warnings"] == []
    assert off_by(intact, name, None) <= TOLERANCE_PX
    assert reframed(stack, name, "repaint")["warnings"] == ["source_altered"]


def test_a_flagged_variant_found_existing_keeps_its_warning(stack: Stack):
    """The warning travels with the variant (its metadata): a redelivery that finds it existing shows it too."""
    first = reframed(stack, "rocket.jpg", "repaint")
    assert first["warnings"] == ["source_altered"]

    stack.invoke(sqs_event(s3_event("uploads/check/repaint/rocket.jpg")))

    (again,) = stack.read_json("reframed/check/repaint/rocket.jpg/manifest.json")["variants"]
    assert (again["status"], again["warnings"]) == ("existing", ["source_altered"])
    assert generations(stack) == 1


def test_retry_pays_for_a_second_generation_and_keeps_it_when_it_is_better(stack: Stack):
    stack.configure(SOURCE_CHECK="retry")
    source = "uploads/check/retry/rocket.jpg"
    stack.put_image(source)
    stack.put(source + ".reframe.json", {**TARGETS, "seed": 4242})
    stack.faults("repaint", "ok")
    assert stack.invoke(sqs_event(s3_event(source))) == {"batchItemFailures": []}
    (entry,) = stack.read_json("reframed/check/retry/rocket.jpg/manifest.json")["variants"]
    assert entry["warnings"] == [] and entry["source_match"] > 0.95
    assert entry["seed"] != 4242 and entry["attempts"] == 2
    assert entry["cost_usd"] == pytest.approx(2 * DEFAULT_PRICES["segmind"]["DEFAULT"])
    assert generations(stack) == 2
    assert stack.image(entry["key"]).size == tuple(RESOLUTION)


def test_the_source_is_read_once_per_run_for_its_thumbnail_whatever_the_number_of_variants(stack: Stack, aws_env: str):
    source = "uploads/check/reads/rocket.jpg"
    stack.put_image(source)
    size = (IMAGES / "rocket.jpg").stat().st_size
    three = {"version": 1, "targets": [{"resolution": "1536x640"}, {"resolution": "640x1536"}, {"size": "1500x500"}]}
    stack.put(source + ".reframe.json", three)
    storage = S3Storage(BUCKET, servers.client("s3", aws_env))
    pipeline = build_pipeline(Settings.from_env(), lambda bucket: storage)
    try:
        outcome = pipeline.handle(ObjectEvent(BUCKET, source, "created"), Deadline())
    finally:
        pipeline.close()
    assert all(record.source_match is not None and record.source_match > 0.95 for record in outcome.records)
    # the header, the sidecar and the source once (not once per variant)
    assert size < storage.bytes_read <= size + 64 * 1024 + 1024


def test_off_records_nothing(stack: Stack):
    stack.configure(SOURCE_CHECK="off")
    entry = reframed(stack, "rocket.jpg", "repaint")
    assert entry["source_match"] is None and entry["source_box"] is None and entry["warnings"] == []


@pytest.mark.parametrize("name", SAMPLES)
def test_a_jpeg_generation_reports_the_box_in_its_own_full_size_pixels(stack: Stack, name: str):
    stack.emulator_config(image_format="jpeg")  # as Segmind answers: decoded at a reduced scale by the check
    entry = reframed(stack, name, "ok")
    assert entry["warnings"] == [] and entry["source_match"] > 0.95
    assert off_by(entry, name, None) <= TOLERANCE_PX


def test_a_3_2_photo_made_into_a_linkedin_banner_from_a_jpeg_generation_is_flagged_as_cropped(stack: Stack):
    stack.emulator_config(image_format="jpeg")
    source = "uploads/check/banner/coffee.png"  # 600x400
    stack.put_image(source, "coffee.png")
    stack.put(source + ".reframe.json", {"version": 1, "targets": [{"preset": "linkedin-banner"}]})
    assert stack.invoke(sqs_event(s3_event(source))) == {"batchItemFailures": []}
    (entry,) = stack.read_json("reframed/check/banner/coffee.png/manifest.json")["variants"]
    assert entry["status"] == "created"
    box = entry["source_box"]
    # The 1536x512 generation holds the photo at 768x512, centred; a 4:1 crop of it must cut the photo.
    assert abs(box["width"] - 768) <= 2 and abs(box["height"] - 512) <= 2 and abs(box["x"] - 384) <= 2
    assert "source_cropped" in entry["warnings"]
