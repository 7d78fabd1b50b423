"""A variant's deliverables (domain/renditions.py render_all, application/deliverables.py): every format at
every width from one crop of the generation, written optimized at the template's keys with their headers,
and the deliverables a new manifest no longer wants."""

from __future__ import annotations

import hashlib
import json

import pytest
from PIL import Image

from reframe_pipeline.adapters.optimizers import optimize
from reframe_pipeline.application.deliverables import Publisher, published, srcset_of, unwanted
from reframe_pipeline.domain.delivery import delivery_for
from reframe_pipeline.domain.finishing import render_all
from reframe_pipeline.domain.manifest import ConfigInfo, Manifest, Rendition, SourceInfo, VariantRecord
from reframe_pipeline.domain.planning import plan
from reframe_pipeline.domain.sidecar import parse_sidecar

from .fakes import MemoryStorage
from .images import opened, saved

TEMPLATE = "img/{dir}/{stem}/{name}-{width}w.{hash}.{ext}"
XMP = b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF/></x:xmpmeta>'


def variant(targets: list[dict], output: dict):
    document = {"version": 1, "targets": targets, "output": output}
    sidecar = parse_sidecar(json.dumps(document).encode(), max_bytes=65536, max_targets=20)
    return plan(sidecar, provider="local", default_speed="DEFAULT", style_prefix="styles/")[0]


def generation(size: tuple[int, int] = (1344, 704)) -> bytes:
    return saved(Image.radial_gradient("L").convert("RGB").resize(size), "PNG")


def publisher(template: str = TEMPLATE, base: str | None = "https://cdn.example.com") -> Publisher:
    delivery = delivery_for(
        template=template,
        cache_control="",
        public_base_url=base,
        output_prefix="reframed/",
        input_prefix="uploads/",
        style_prefix="styles/",
        same_bucket=False,
    )
    return Publisher(delivery, optimize)


def test_every_format_at_every_width_from_one_crop() -> None:
    og = variant([{"size": "1200x628", "name": "og", "widths": [600]}], {"formats": ["avif", "webp", "jpeg"]})
    rendered, cropped = render_all(generation(), og, XMP)
    assert [(r.fmt, r.spec.width, r.spec.height) for r in rendered] == [
        ("avif", 1200, 628), ("avif", 600, 314), ("webp", 1200, 628), ("webp", 600, 314),
        ("jpeg", 1200, 628), ("jpeg", 600, 314),
    ]  # fmt: skip
    for item in rendered:
        assert opened(item.body).size == (item.spec.width, item.spec.height)
        assert opened(item.body).format == {"avif": "AVIF", "webp": "WEBP", "jpeg": "JPEG"}[item.fmt]
    assert not cropped


def test_the_generation_s_own_bytes_kept_when_nothing_changes() -> None:
    """A PNG generation delivered as PNG at its own size: the provider's pixels, byte for byte, plus the XMP."""
    body = generation((1024, 1024))
    square = variant([{"resolution": "1024x1024", "widths": [512]}], {"format": "original"})
    (full, half), _ = render_all(body, square, XMP)
    assert full.fmt == half.fmt == "png"
    assert opened(full.body).tobytes() == opened(body).tobytes() and XMP in full.body
    assert opened(half.body).size == (512, 512)


def test_published_at_the_template_s_keys_with_headers_and_urls() -> None:
    og = variant([{"size": "1200x628", "name": "og", "widths": [600]}], {"formats": ["avif", "jpeg"]})
    rendered, _ = render_all(generation(), og, XMP)
    out = MemoryStorage("cdn-assets")
    written, signed = publisher().publish(
        out, "shoot/hero.png", "og", rendered, {"source-etag": "e1"}, lambda b, f: None
    )
    assert not signed
    for r in written:
        body = out.read(r.key)
        assert r.key.startswith(f"img/shoot/hero/og-{r.width}w.{hashlib.sha256(body).hexdigest()[:8]}.")
        assert r.url == f"https://cdn.example.com/{r.key}" and r.bytes == len(body)
        info = out.head(r.key)
        assert info is not None and info.content_type == {"avif": "image/avif", "jpeg": "image/jpeg"}[r.format]
        assert info.metadata == {"source-etag": "e1"}
        assert out.cache_control[r.key] == "public, max-age=31536000, immutable"
    jpeg = [r for r in written if r.format == "jpeg"]
    assert opened(out.read(jpeg[0].key)).info.get("progressive")  # through mozjpeg
    assert srcset_of(written)["avif"] == f"{written[0].url} 1200w, {written[1].url} 600w"


def test_signed_bytes_are_the_ones_written() -> None:
    og = variant([{"size": "1200x628", "name": "og"}], {"format": "png"})
    rendered, _ = render_all(generation(), og, XMP)
    out = MemoryStorage()
    (written,), signed = publisher().publish(out, "hero.png", "og", rendered, {}, lambda body, fmt: body + b"\0")
    assert signed and out.read(written.key).endswith(b"\0")
    assert out.head(written.key).metadata == {"content-credentials": "c2pa"}  # type: ignore[union-attr]


def test_a_wrong_rendition_is_never_written() -> None:
    og = variant([{"size": "1200x628", "name": "og"}], {"format": "png"})
    rendered, _ = render_all(generation(), og, XMP)
    out = MemoryStorage()
    with pytest.raises(Exception, match="output check failed"):
        publisher().publish(out, "hero.png", "og", rendered, {}, lambda body, fmt: body[:100])
    assert out.writes == []


SOURCE = SourceInfo(bucket="photos", key="uploads/hero.png", etag="e1")


def rendition(key: str, fmt: str = "avif", width: int = 1200) -> Rendition:
    return Rendition(key=key, format=fmt, width=width, height=628, bytes=1)


def manifest(*records: VariantRecord, bucket: str | None = "cdn-assets") -> Manifest:
    return Manifest(source=SOURCE, config=ConfigInfo(from_="object"), variants=list(records), output_bucket=bucket)


def record(name: str, *keys: str, status: str = "created") -> VariantRecord:
    renditions = [rendition(key) for key in keys]
    return VariantRecord(name=name, key=keys[0] if keys else None, status=status, renditions=renditions)  # type: ignore[arg-type]


def test_unwanted_are_the_keys_the_new_manifest_dropped() -> None:
    before = manifest(record("og", "og.1.avif", "og.1.jpg"), record("story", "story.avif"), record("old", "old.avif"))
    after = manifest(record("og", "og.2.avif"), record("story", status="failed"))
    assert unwanted(before, after, prune=False) == ["og.1.avif", "og.1.jpg"]  # story failed now: kept
    assert unwanted(before, after, prune=True) == ["og.1.avif", "og.1.jpg", "old.avif"]  # old target pruned
    assert unwanted(None, after, prune=True) == []


def test_a_changed_output_bucket_unpublishes_everything_in_the_old_one() -> None:
    before = manifest(record("og", "og.avif"), bucket=None)  # in the source bucket, from before
    after = manifest(record("og", "og.avif"))
    assert unwanted(before, after, prune=False) == ["og.avif"]


def test_a_manifest_from_before_renditions_lists_its_keys() -> None:
    old = manifest(VariantRecord(name="og", key="reframed/hero.png/og.jpg", status="created", width=1200, height=628))
    assert published(old) == {
        "og": [Rendition(key="reframed/hero.png/og.jpg", format="jpeg", width=1200, height=628, bytes=0)]
    }
