"""Pay for a generation once, render it many ways: over moto and the emulator, with the idempotency table
of a deployment. Changing how a variant is rendered (format, quality, exact size) pays nothing; changing
what the provider sees (seed, speed, style, the source) pays exactly once per affected target; a kept
generation that is gone is paid for again exactly once, and the manifest says so."""

from __future__ import annotations

import io
from typing import Any

import pytest
from PIL import Image

from reframe_local import servers

from .conftest import BUCKET, Stack, s3_event
from .test_reliability import TABLE, create_idempotency_table

SOURCE = "uploads/gen/photo.jpg"
OUT = "reframed/gen/photo.jpg/"
TARGETS = [{"size": "1200x628", "name": "og"}, {"resolution": "1024x1024"}]


@pytest.fixture
def deployed(stack: Stack, aws_env: str) -> Stack:
    create_idempotency_table(servers.client("dynamodb", aws_env))
    stack.configure(IDEMPOTENCY_TABLE=TABLE)
    stack.put_image(SOURCE)
    return stack


def run(stack: Stack, **sidecar: Any) -> dict[str, dict[str, Any]]:
    """Write the sidecar, deliver its event, and return the manifest's variants by name."""
    stack.put(SOURCE + ".reframe.json", {"version": 1, "targets": TARGETS, **sidecar})
    result = stack.invoke(s3_event(SOURCE + ".reframe.json"))
    assert result["results"][0]["action"] == "processed", result
    return {v["name"]: v for v in stack.read_json(OUT + "manifest.json")["variants"]}


def billed(stack: Stack) -> int:
    return int(stack.stats()["billed"])


def image(stack: Stack, key: str) -> Image.Image:
    return Image.open(io.BytesIO(stack.s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()))


def test_a_change_of_rendition_pays_nothing_and_renders_from_the_kept_generation(deployed: Stack):
    first = run(deployed, seed=111)
    assert billed(deployed) == 2
    assert {v["rendered_from_generation"] for v in first.values()} == {False}

    as_webp = run(deployed, seed=111, output={"format": "webp", "quality": 70})
    assert billed(deployed) == 2
    assert {name: (v["status"], v["cost_usd"], v["rendered_from_generation"]) for name, v in as_webp.items()} == {
        "og": ("created", 0.0, True),
        "1024x1024": ("created", 0.0, True),
    }
    assert [v["generation"] for v in as_webp.values()] == [v["generation"] for v in first.values()]
    og = image(deployed, OUT + "og.webp")
    assert (og.format, og.size) == ("WEBP", (1200, 628))
    assert deployed.outputs(OUT) == sorted([OUT + "og.webp", OUT + "1024x1024.webp", OUT + "manifest.json"])

    # Another exact size of the same shape: the same generation, cropped otherwise.
    resized = [{"size": "1000x523", "name": "og"}, {"resolution": "1024x1024"}]
    deployed.put(SOURCE + ".reframe.json", {"version": 1, "targets": resized, "seed": 111})
    deployed.invoke(s3_event(SOURCE + ".reframe.json"))
    assert billed(deployed) == 2
    assert image(deployed, OUT + "og.jpg").size == (1000, 523)


def test_a_change_the_provider_sees_pays_once_per_affected_target_and_a_revert_is_free(deployed: Stack):
    run(deployed, seed=111)
    assert billed(deployed) == 2
    reseeded = run(deployed, seed=112)
    assert billed(deployed) == 4
    assert {v["cost_usd"] for v in reseeded.values()} == {0.075}
    # Only one target's speed changes: only that one pays.
    faster = [{**TARGETS[0], "rendering_speed": "TURBO"}, TARGETS[1]]
    deployed.put(SOURCE + ".reframe.json", {"version": 1, "targets": faster, "seed": 112})
    deployed.invoke(s3_event(SOURCE + ".reframe.json"))
    assert billed(deployed) == 5
    # A style on the other target only: that one pays.
    styled = [faster[0], {**TARGETS[1], "style_codes": ["5A3F09C1"]}]
    deployed.put(SOURCE + ".reframe.json", {"version": 1, "targets": styled, "seed": 112})
    deployed.invoke(s3_event(SOURCE + ".reframe.json"))
    assert billed(deployed) == 6
    # Back to seed 111: both generations are still kept.
    reverted = run(deployed, seed=111)
    assert billed(deployed) == 6
    assert {v["rendered_from_generation"] for v in reverted.values()} == {True}
    # A new version of the source is new pixels for every target.
    deployed.put_image(SOURCE, "chelsea.png")
    deployed.invoke(s3_event(SOURCE))
    assert billed(deployed) == 8


def test_a_kept_generation_that_is_gone_is_collected_from_the_provider_while_it_holds_it(deployed: Stack):
    first = run(deployed, seed=111)
    deployed.s3.delete_object(Bucket=BUCKET, Key=first["og"]["generation_key"])
    again = run(deployed, seed=111, output={"format": "jpeg"})
    assert billed(deployed) == 2  # Segmind keeps an async result an hour: its ticket is in the journal
    assert again["og"]["note"] == "its kept generation had expired or was deleted: collected again from the provider"
    assert image(deployed, OUT + "og.jpg").size == (1200, 628)


def test_a_kept_generation_that_is_gone_is_paid_again_once_and_said(deployed: Stack):
    deployed.configure(SEGMIND_API_MODE="sync")  # no provider copy to collect: as after Segmind's hour
    first = run(deployed, seed=111)
    gone = first["1024x1024"]["generation_key"]
    deployed.s3.delete_object(Bucket=BUCKET, Key=gone)  # expired by the lifecycle rule, or deleted by hand
    again = run(deployed, seed=111, output={"format": "jpeg"})
    assert billed(deployed) == 3
    assert again["1024x1024"]["cost_usd"] == 0.075 and not again["1024x1024"]["rendered_from_generation"]
    assert (
        again["1024x1024"]["note"] == "its kept generation had expired or was deleted: generated (and paid for) again"
    )
    assert again["og"]["rendered_from_generation"] and again["og"]["note"] is None
    assert deployed.keys(OUT + "_generation-") == sorted(v["generation_key"] for v in again.values())
    run(deployed, seed=111, output={"format": "webp"})
    assert billed(deployed) == 3  # kept again, so the next change is free


def test_without_kept_generations_every_change_pays(deployed: Stack):
    deployed.configure(GENERATIONS_KEEP_DAYS="0", SEGMIND_API_MODE="sync")
    run(deployed, seed=111)
    run(deployed, seed=111, output={"format": "jpeg"})
    assert billed(deployed) == 4
    assert deployed.keys(OUT + "_generation-") == []


def test_deleting_the_source_removes_its_generations(deployed: Stack):
    run(deployed, seed=111)
    assert len(deployed.keys(OUT + "_generation-")) == 2
    deployed.s3.delete_object(Bucket=BUCKET, Key=SOURCE)
    result = deployed.invoke(s3_event(SOURCE, "ObjectRemoved:Delete"))
    assert result["results"][0]["action"] == "removed"
    assert deployed.keys(OUT) == []


def generations(stack: Stack) -> list[str]:
    return [key for key in stack.keys(OUT) if key not in stack.outputs(OUT)]


def test_prune_keeps_every_generation_when_a_variant_failed_in_the_same_run(deployed: Stack):
    deployed.configure(MAX_PARALLEL_CALLS="1")  # one call at a time: one target gets the fault, the other not
    run(deployed, seed=111)
    kept = generations(deployed)
    assert len(kept) == 2
    deployed.faults("ok", "400")

    changed = run(deployed, seed=777, prune=True)

    assert sorted(v["status"] for v in changed.values()) == ["created", "failed"]
    # The failed target's generation is what a revert (or another invocation) still renders from.
    assert set(kept) < set(generations(deployed))
