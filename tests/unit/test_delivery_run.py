"""A run with OUTPUT_BUCKET and a key template (application/outputs.py, deliverables.py): deliverables in the
second bucket, state in the source's; every rendition from one paid generation; nothing left behind in either
bucket; an output bucket that refuses writes retried without paying twice. In-memory ports only."""

from __future__ import annotations

from typing import Any

import pytest

from reframe_pipeline.domain.errors import BucketWriteError
from tests.unit.fakes import MemoryStorage
from tests.unit.orchestration_harness import GENERATION_PREFIX, MANIFEST, OUT, PRICE, SOURCE

TEMPLATE = "img/{dir}/{stem}/{name}-{width}w.{hash}.{ext}"
OG = {"size": "1200x628", "name": "og", "widths": [600]}
STORY = {"aspect_ratio": "9:16", "name": "story"}
SETTINGS = {
    "output_bucket": "cdn-assets",
    "output_key_template": TEMPLATE,
    "public_base_url": "https://cdn.example.com",
    "source_check": "off",
}


@pytest.fixture
def h(make: Any) -> Any:
    return make(**SETTINGS)


def published(h: Any) -> list[str]:
    return h.delivered.keys()


def test_deliverables_in_the_output_bucket_state_in_the_source_s(h: Any) -> None:
    h.upload(targets=[OG, STORY], output={"formats": ["avif", "jpeg"], "quality": 80})
    outcome = h.handle()
    assert h.provider.calls == 2  # one paid generation per target: six deliverables
    assert sum(r.cost_usd for r in outcome.records) == pytest.approx(2 * PRICE)
    assert len(published(h)) == 6 and all(key.startswith("img/photo/") for key in published(h))
    assert [k for k in h.storage.keys(OUT) if not k.startswith(OUT + GENERATION_PREFIX)] == [MANIFEST]
    manifest = h.manifest()
    assert manifest["output_bucket"] == "cdn-assets"
    og = next(v for v in manifest["variants"] if v["name"] == "og")
    assert [(r["format"], r["width"], r["height"]) for r in og["renditions"]] == [
        ("avif", 1200, 628), ("avif", 600, 314), ("jpeg", 1200, 628), ("jpeg", 600, 314)
    ]  # fmt: skip
    assert og["key"] == og["renditions"][0]["key"]
    for rendition in og["renditions"]:
        info = h.delivered.head(rendition["key"])
        assert info.content_type == {"avif": "image/avif", "jpeg": "image/jpeg"}[rendition["format"]]
        assert h.delivered.cache_control[rendition["key"]] == "public, max-age=31536000, immutable"
        assert rendition["url"] == "https://cdn.example.com/" + rendition["key"]
        assert rendition["bytes"] == len(h.delivered.body(rendition["key"]))
    first, second = (r["url"] for r in og["renditions"][:2])
    assert og["srcset"]["avif"] == f"{first} 1200w, {second} 600w"


def test_a_second_run_finds_every_deliverable_and_pays_nothing(h: Any) -> None:
    h.upload(targets=[OG], output={"formats": ["webp", "jpeg"]})
    first = h.handle().records[0]
    again = h.handle().records[0]
    assert (again.status, again.cost_usd, h.provider.calls) == ("existing", 0.0, 1)
    assert again.renditions == first.renditions and again.srcset == first.srcset
    h.delivered.delete([first.renditions[-1].key])  # one rendition lost: the variant is made again, for free
    remade = h.handle().records[0]
    assert (remade.status, remade.rendered_from_generation, h.provider.calls) == ("created", True, 1)
    assert sorted(published(h)) == sorted(r.key for r in remade.renditions)


def test_a_format_or_width_change_is_free_and_leaves_no_orphan(h: Any) -> None:
    h.upload(targets=[OG], output={"formats": ["avif", "jpeg"]})
    h.handle()
    h.sidecar(targets=[{**OG, "widths": [300]}], output={"formats": ["webp"]})
    record = h.handle().records[0]
    assert (record.cost_usd, record.rendered_from_generation, h.provider.calls) == (0.0, True, 1)
    assert sorted(published(h)) == sorted(r.key for r in record.renditions)
    assert [(r.format, r.width) for r in record.renditions] == [("webp", 1200), ("webp", 300)]


def test_prune_deletes_a_removed_target_s_deliverables(h: Any) -> None:
    h.upload(targets=[OG, STORY])
    h.handle()
    story = [k for k in published(h) if "/story-" in k]
    h.sidecar(targets=[OG])
    h.handle()
    assert set(story) <= set(published(h))  # without prune, kept
    h.sidecar(targets=[OG], prune=True)
    h.handle()
    assert not any("/story-" in k for k in published(h))


def test_new_bytes_get_a_new_hash_key_and_the_old_one_goes(h: Any) -> None:
    h.upload(targets=[OG], output={"format": "jpeg", "quality": 90})
    before = set(published(h)) or {r.key for r in h.handle().records[0].renditions}
    h.sidecar(targets=[OG], output={"format": "jpeg", "quality": 60})
    after = {r.key for r in h.handle().records[0].renditions}
    assert before.isdisjoint(after) and set(published(h)) == after


@pytest.mark.parametrize("how", ["deleted", "overwritten"])
def test_a_source_deleted_or_overwritten_takes_its_deliverables_along(h: Any, how: str) -> None:
    h.upload(targets=[OG], output={"formats": ["avif", "jpeg"]})
    first = {r.key for r in h.handle().records[0].renditions}
    if how == "deleted":
        h.storage.delete([SOURCE])
        assert h.handle(action="removed").action == "removed"
        assert published(h) == [] and h.storage.keys(OUT) == []
        return
    from tests.unit.fakes import solid_png

    etag = h.storage.put(SOURCE, solid_png(80, 40))
    now = {r.key for r in h.handle().records[0].renditions}
    assert set(published(h)) == now and first  # the old keys gone, unless the new bytes are the same
    assert {h.delivered.head(key).metadata["source-etag"] for key in now} == {etag}


def test_the_removal_notice_names_the_deliverables(h: Any) -> None:
    h.upload(targets=[OG])
    keys = sorted(r.key for r in h.handle().records[0].renditions)
    sent: list[Any] = []
    h.pipeline.notifier.publish = lambda detail, deadline: sent.append(detail)
    h.storage.delete([SOURCE])
    h.handle(action="removed")
    (notice,) = sent
    assert notice.output_bucket == "cdn-assets"
    assert sorted(r.key for v in notice.variants for r in v.renditions) == keys


class _Refusing(MemoryStorage):
    """An output bucket that is not there (yet)."""

    refusing = True

    def write(self, key: str, body: bytes, content_type: str, metadata: dict[str, str], **options: Any) -> None:
        if self.refusing:
            raise BucketWriteError(
                f"cannot write to bucket {self.bucket!r} (NoSuchBucket: The specified bucket does not exist)"
            )
        super().write(key, body, content_type, metadata, **options)


def test_an_unwritable_output_bucket_is_retried_without_paying_twice(h: Any) -> None:
    h.delivered = _Refusing("cdn-assets")
    h.upload(targets=[OG, STORY])
    with pytest.raises(Exception, match="2 variant\\(s\\) to retry"):
        h.handle()
    failed = h.manifest()["variants"]
    assert {v["error"]["code"] for v in failed} == {"bucket_unwritable"}
    assert "cannot write to bucket 'cdn-assets' (NoSuchBucket" in failed[0]["error"]["message"]
    assert h.provider.calls == 2 and len(h.generations()) == 2  # paid once each, kept in the source bucket
    h.delivered.refusing = False
    records = h.handle().records
    assert {(r.status, r.rendered_from_generation, r.cost_usd) for r in records} == {("created", True, 0.0)}
    assert h.provider.calls == 2


def test_output_bucket_naming_the_source_bucket_refuses_a_looping_template(make: Any) -> None:
    """OUTPUT_BUCKET is another bucket at start-up, so "{path}/…" is allowed; an event from that very bucket is
    refused before anything is paid: its deliverables would land under INPUT_PREFIX."""
    h = make(output_bucket="bucket", output_key_template="{path}/{name}.{ext}", source_check="off")
    h.upload(targets=[OG])
    outcome = h.handle()
    assert outcome.action == "invalid" and h.provider.calls == 0
    assert "OUTPUT_BUCKET is this source bucket" in outcome.detail and "INPUT_PREFIX 'uploads/'" in outcome.detail


class _DeletedWhileWriting(MemoryStorage):
    """The source deleted just as its manifest is written: the delete's own event may have found nothing."""

    def write(self, key: str, body: bytes, content_type: str, metadata: dict[str, str], **options: Any) -> None:
        super().write(key, body, content_type, metadata, **options)
        if key == MANIFEST:
            self.delete([SOURCE])


def test_a_source_deleted_as_its_manifest_is_written_leaves_nothing(make: Any) -> None:
    h = make(storage=_DeletedWhileWriting(), **SETTINGS)
    h.upload(targets=[OG], output={"formats": ["avif", "jpeg"]})
    assert h.handle().action == "missing"
    assert published(h) == [] and h.storage.keys(OUT) == []


def test_the_backfill_looks_for_deliverables_where_they_now_are(h: Any) -> None:
    from reframe_pipeline.application.backfill import survey

    h.upload(targets=[OG, STORY], output={"formats": ["avif", "jpeg"]})
    h.handle()
    assert survey(h.pipeline, "bucket", "uploads/").todo == []
    lost = next(k for k in published(h) if "/story-" in k and k.endswith(".jpg"))
    h.delivered.delete([lost])
    (work,) = survey(h.pipeline, "bucket", "uploads/").todo
    assert [v.name for v in work.missing] == ["story"] and work.paid == []  # rendered again from the kept generation


def test_the_gallery_shows_deliverables_from_the_manifest_s_output_bucket() -> None:
    from reframe_cli.gallery import source_view

    asked: list[tuple[str, str | None]] = []

    def url(key: str, bucket: str | None = None) -> str:
        asked.append((key, bucket))
        return f"https://signed/{bucket}/{key}"

    manifest = {
        "source": {"bucket": "photos", "key": SOURCE},
        "config": {"from": "object"},
        "output_bucket": "cdn-assets",
        "variants": [{"name": "og", "key": "img/og.avif", "status": "created"}],
    }
    view = source_view(manifest, url, source_url=url)
    assert view.variants[0].image == "https://signed/cdn-assets/img/og.avif"
    assert view.image == f"https://signed/None/{SOURCE}"  # the source: in the report's bucket


def test_a_variant_of_before_without_a_manifest_is_found_in_its_folder(make: Any) -> None:
    """Outputs written before manifests listed renditions (or whose manifest is gone): the folder's file counts."""
    h = make(source_check="off")
    h.upload(targets=[{"size": "1200x628", "name": "og"}])
    (made,) = h.handle().records
    h.storage.delete([MANIFEST])
    (again,) = h.handle().records
    assert (again.status, h.provider.calls) == ("existing", 1)
    assert [(r.key, r.format, r.width, r.bytes) for r in again.renditions] == [
        (made.key, "png", 1200, len(h.storage.body(made.key)))
    ]
