"""What downstream systems are told when a source's work ends (domain/notices.py; docs/notices.md): the status of the outcome, each variant as written, the counts, the cost, and an event_id
that is the same for the same outcome and new for any other."""

from __future__ import annotations

import re

import pytest

from reframe_pipeline.domain.manifest import ConfigInfo, ErrorInfo, Manifest, Rendition, SourceInfo, VariantRecord
from reframe_pipeline.domain.notices import READY, REMOVED, files_gone, ready, removed

SOURCE = SourceInfo(bucket="my-bucket", key="uploads/a/photo.jpg", etag="etag-1", version="v1")
OG = VariantRecord(
    name="og",
    key="reframed/a/photo.jpg/og.png",
    status="created",
    width=1200,
    height=628,
    cost_usd=0.075,
    seed=4242,
    param_hash="params-1",
)
STORY = VariantRecord(
    name="story", key="reframed/a/photo.jpg/story.jpg", status="existing", width=1080, height=1920, cost_usd=0.0
)
FAILED = VariantRecord(
    name="9:16", status="failed", error=ErrorInfo(code="budget_exceeded", message="the budget is spent")
)


def manifest(*variants: VariantRecord, source: SourceInfo = SOURCE, error: ErrorInfo | None = None) -> Manifest:
    return Manifest(source=source, config=ConfigInfo(from_="object"), variants=list(variants), error=error)


def notice(*variants: VariantRecord, **changes: object):
    return ready(manifest(*variants, **changes), "reframed/a/photo.jpg/manifest.json", "corr-1")  # type: ignore[arg-type]


def test_every_variant_there_is_completed() -> None:
    detail = notice(OG, STORY)
    assert (detail.status, detail.detail_type) == ("completed", READY)
    assert detail.counts.model_dump() == {"created": 1, "existing": 1, "failed": 0, "removed": 0}
    assert (detail.bucket, detail.source.key, detail.source.etag, detail.source.version) == (
        "my-bucket",
        "uploads/a/photo.jpg",
        "etag-1",
        "v1",
    )
    assert (detail.manifest_key, detail.correlation_id) == ("reframed/a/photo.jpg/manifest.json", "corr-1")


def test_some_variants_there_is_partial_and_none_is_failed() -> None:
    assert notice(OG, FAILED).status == "partial"
    assert notice(OG, FAILED).counts.model_dump() == {"created": 1, "existing": 0, "failed": 1, "removed": 0}
    assert notice(FAILED).status == "failed"
    assert notice(FAILED).detail_type == READY


def test_a_source_level_error_is_not_completed() -> None:
    error = ErrorInfo(code="invalid_sidecar", message="bad")
    assert notice(OG, error=error).status == "partial"
    assert notice(error=error).status == "failed"


def test_each_variant_as_written() -> None:
    detail = notice(OG, FAILED)
    assert [v.model_dump() for v in detail.variants] == [
        {
            "name": "og",
            "key": "reframed/a/photo.jpg/og.png",
            "status": "created",
            "size": "1200x628",
            "error_code": None,
            "renditions": [],
        },
        {
            "name": "9:16",
            "key": None,
            "status": "failed",
            "size": None,
            "error_code": "budget_exceeded",
            "renditions": [],
        },
    ]


def test_the_cost_is_what_this_run_spent() -> None:
    third = VariantRecord(name="x", key="k", status="created", width=1, height=1, cost_usd=0.1 + 0.2)
    assert notice(OG, STORY, third).cost_usd == pytest.approx(0.375)
    assert notice(OG, STORY, third).cost_usd == round(0.075 + 0.0 + 0.1 + 0.2, 6)
    assert notice(STORY).cost_usd == 0.0


def test_the_event_id_is_a_hash_of_the_outcome() -> None:
    assert re.fullmatch(r"[0-9a-f]{32}", notice(OG).event_id)
    assert notice(OG, FAILED).event_id == notice(OG, FAILED).event_id


def test_a_redelivery_that_changes_nothing_keeps_the_event_id() -> None:
    redelivered = OG.model_copy(update={"status": "existing", "cost_usd": 0.0})
    assert notice(redelivered, STORY).event_id == notice(OG, STORY).event_id


def test_a_redelivery_a_second_later_keeps_the_event_id() -> None:
    """Nothing of the run itself goes in: its time (the clock stepped over a second boundary), latency, attempts."""
    first = manifest(OG, STORY).model_copy(update={"generated_at": "2026-12-05T18:59:59+00:00"})
    redelivered = OG.model_copy(update={"status": "existing", "cost_usd": 0.0, "latency_ms": 3, "attempts": 0})
    later = manifest(redelivered, STORY).model_copy(update={"generated_at": "2026-12-05T19:00:01+00:00"})
    key = "reframed/a/photo.jpg/manifest.json"
    assert ready(later, key, "corr-2").event_id == ready(first, key, "corr-1").event_id


def test_a_regenerated_variant_under_the_same_key_gets_a_new_event_id() -> None:
    """The gallery's regenerate: a new seed for one target, the same name and key, a new image."""
    regenerated = OG.model_copy(update={"seed": 777, "param_hash": "params-2"})
    assert notice(regenerated, STORY).event_id != notice(OG, STORY).event_id
    # A new seed alone (a retried generation) or new parameters alone (another quality or focus): a new image too.
    assert notice(OG.model_copy(update={"seed": 777}), STORY).event_id != notice(OG, STORY).event_id
    assert notice(OG.model_copy(update={"param_hash": "params-2"}), STORY).event_id != notice(OG, STORY).event_id


@pytest.mark.parametrize(
    "other",
    [
        {"source": SOURCE.model_copy(update={"bucket": "other-bucket"})},
        {"source": SOURCE.model_copy(update={"key": "uploads/a/other.jpg"})},
        {"source": SOURCE.model_copy(update={"etag": "etag-2"})},  # a new upload
        {"source": SOURCE.model_copy(update={"version": "v2"})},
        {"variants": (OG.model_copy(update={"key": "reframed/a/photo.jpg/og.jpg"}), FAILED)},  # another format
        {"variants": (OG.model_copy(update={"name": "og2"}), FAILED)},
        {"variants": (OG, OG.model_copy(update={"name": "9:16"}))},  # the failed variant made since
        {"variants": (OG, FAILED.model_copy(update={"error": ErrorInfo(code="http_400", message="no")}))},
    ],
)
def test_any_other_outcome_gets_a_new_event_id(other: dict[str, object]) -> None:
    changes = dict(other)  # the parameter itself is shared by every run of the test
    variants = changes.pop("variants", (OG, FAILED))
    assert notice(*variants, **changes).event_id != notice(OG, FAILED).event_id  # type: ignore[arg-type]


def test_another_status_gets_a_new_event_id() -> None:
    assert notice(OG, error=ErrorInfo(code="invalid_sidecar", message="bad")).event_id != notice(OG).event_id


def test_a_removal_names_each_variant_by_its_file() -> None:
    keys = ["reframed/a/photo.jpg/story.jpg", "reframed/a/photo.jpg/og.v2.png"]
    detail = removed(
        "my-bucket", "uploads/a/photo.jpg", "reframed/a/photo.jpg/manifest.json", files_gone(keys), "corr-2"
    )
    assert (detail.status, detail.detail_type) == ("removed", REMOVED)
    assert [(v.name, v.key, v.status) for v in detail.variants] == [
        ("og.v2", "reframed/a/photo.jpg/og.v2.png", "removed"),
        ("story", "reframed/a/photo.jpg/story.jpg", "removed"),
    ]
    assert detail.counts.model_dump() == {"created": 0, "existing": 0, "failed": 0, "removed": 2}
    assert (detail.source.key, detail.source.etag, detail.source.version) == ("uploads/a/photo.jpg", None, None)
    assert (detail.bucket, detail.manifest_key, detail.cost_usd, detail.correlation_id) == (
        "my-bucket",
        "reframed/a/photo.jpg/manifest.json",
        0.0,
        "corr-2",
    )


def test_a_removal_event_id_depends_on_what_was_removed_not_on_its_order() -> None:
    keys = ["reframed/a/photo.jpg/story.jpg", "reframed/a/photo.jpg/og.png"]
    first = removed("b", "uploads/a/photo.jpg", "m", files_gone(keys), "c1")
    assert removed("b", "uploads/a/photo.jpg", "m", files_gone(keys[::-1]), "c2").event_id == first.event_id
    assert removed("b", "uploads/a/photo.jpg", "m", files_gone(keys[:1]), "c1").event_id != first.event_id
    assert removed("b2", "uploads/a/photo.jpg", "m", files_gone(keys), "c1").event_id != first.event_id
    assert removed("b", "uploads/a/other.jpg", "m", files_gone(keys), "c1").event_id != first.event_id
    assert re.fullmatch(r"[0-9a-f]{32}", first.event_id)
    # a removal is another outcome than any made variants of the same source
    assert first.event_id != notice(OG, STORY).event_id


def test_files_of_targets_no_longer_configured_are_not_part_of_the_outcome() -> None:
    """Listed in the manifest (kept until pruned), they are not news: same status, counts and event_id."""
    leftover = VariantRecord(name="thumb", key="reframed/a/photo.jpg/thumb.png", status="unconfigured")
    with_leftover, without = notice(OG, leftover), notice(OG)
    assert (with_leftover.status, with_leftover.counts, with_leftover.event_id) == (
        without.status,
        without.counts,
        without.event_id,
    )
    assert [v.name for v in with_leftover.variants] == ["og"]


OG_AVIF = Rendition(
    key="img/a/photo/og-1200w.3f9a02c1.avif",
    format="avif",
    width=1200,
    height=628,
    bytes=61234,
    url="https://cdn.example.com/img/a/photo/og-1200w.3f9a02c1.avif",
)
OG_SMALL = Rendition(key="img/a/photo/og-600w.81bd77e0.avif", format="avif", width=600, height=314, bytes=20000)


def test_schema_2_carries_the_deliverables_keys_urls_and_bucket() -> None:
    og = OG.model_copy(update={"key": OG_AVIF.key, "renditions": [OG_AVIF, OG_SMALL]})
    detail = ready(
        manifest(og).model_copy(update={"output_bucket": "cdn-assets"}), "reframed/a/photo.jpg/manifest.json", "c"
    )
    assert (detail.schema_version, detail.bucket, detail.output_bucket) == (2, "my-bucket", "cdn-assets")
    assert [r.model_dump() for r in detail.variants[0].renditions] == [
        {"key": OG_AVIF.key, "format": "avif", "width": 1200, "height": 628, "url": OG_AVIF.url},
        {"key": OG_SMALL.key, "format": "avif", "width": 600, "height": 314, "url": None},
    ]
    assert notice(OG).output_bucket == "my-bucket"  # no OUTPUT_BUCKET: the source's


def test_new_rendition_keys_are_a_new_outcome() -> None:
    """With {hash} in the keys, new bytes are new keys: consumers must hear of them."""
    one = OG.model_copy(update={"renditions": [OG_AVIF]})
    other = OG.model_copy(
        update={"renditions": [OG_AVIF.model_copy(update={"key": "img/a/photo/og-1200w.0badf00d.avif"})]}
    )
    assert notice(one).event_id != notice(other).event_id
    assert notice(one).event_id == notice(one.model_copy(update={"status": "existing"})).event_id


def test_a_removal_lists_every_deliverable_of_the_last_manifest() -> None:
    og = OG.model_copy(update={"renditions": [OG_AVIF, OG_SMALL]})
    detail = removed("my-bucket", "uploads/a/photo.jpg", "m", [og], "c", output_bucket="cdn-assets")
    assert detail.output_bucket == "cdn-assets"
    assert [(v.name, v.status, [r.key for r in v.renditions]) for v in detail.variants] == [
        ("og", "removed", [OG_AVIF.key, OG_SMALL.key])
    ]
