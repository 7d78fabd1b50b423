"""Reading and preparing a source: rotated, read once, refused when it is no image or its header never parses. In-memory ports only (tests/unit/fakes.py and orchestration_harness.py)."""

from __future__ import annotations

import io
from typing import Any

from PIL import Image

from reframe_pipeline.application.outputs import PREPARED_NAME
from reframe_pipeline.application.source_image import SourceImage
from tests.unit.fakes import solid_png
from tests.unit.orchestration_harness import SOURCE, TARGETS


def rotated_jpeg(colour: tuple[int, int, int] = (200, 10, 10)) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees to display
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), colour).save(buffer, "JPEG", exif=exif.tobytes())
    return buffer.getvalue()


def test_an_exif_rotated_source_is_prepared_once_per_version(make: Any) -> None:
    h = make()
    key, out = "uploads/phone.jpg", "reframed/phone.jpg/"
    h.upload(key, rotated_jpeg(), targets=TARGETS[:1])
    first = h.handle(key)
    assert first.manifest is not None
    assert first.manifest.source.prepared == {"reasons": ["exif-orientation"]}
    with Image.open(io.BytesIO(h.storage.body(out + PREPARED_NAME))) as prepared:
        assert prepared.size == (48, 64)  # upright
    assert (out + PREPARED_NAME, 900) in h.storage.presigned  # the provider is sent the prepared copy
    assert (key, 900) not in h.storage.presigned
    assert h.provider.requests[0].source.url.endswith(PREPARED_NAME + "?X-Amz-Expires=900")

    h.sidecar(key, targets=TARGETS[:2])
    h.handle(key)
    assert h.storage.writes.count(out + PREPARED_NAME) == 1
    assert h.provider.calls == 2

    h.upload(key, rotated_jpeg((10, 200, 10)))  # a new version: prepared again
    h.handle(key)
    assert h.storage.writes.count(out + PREPARED_NAME) == 2

    h.upload(key, solid_png(64, 48))  # upright now: the prepared copy is obsolete
    outcome = h.handle(key)
    assert outcome.manifest is not None
    assert outcome.manifest.source.prepared is None
    assert out + PREPARED_NAME not in h.storage.keys(out)
    assert h.provider.requests[-1].source.url.endswith(key + "?X-Amz-Expires=900")


def test_an_upright_source_is_sent_as_it_is_after_reading_only_its_header(make: Any) -> None:
    h = make(source_check="off")
    h.upload(targets=TARGETS[:1])
    h.handle()
    assert PREPARED_NAME not in "".join(h.storage.keys())
    assert [first for key, first in h.storage.reads if key == SOURCE] == [64 * 1024]
    assert h.storage.presigned == [(SOURCE, 900)]


def test_the_source_check_reads_the_source_once_per_run_whatever_the_number_of_variants(make: Any) -> None:
    h = make()
    h.upload(targets=TARGETS[:3])
    outcome = h.handle()
    assert [first for key, first in h.storage.reads if key == SOURCE] == [64 * 1024, None]  # header, thumbnail
    assert all(record.source_match is not None for record in outcome.records)


def test_a_source_that_is_no_image_gives_a_failed_manifest_without_a_call(make: Any) -> None:
    h = make()
    h.upload(body=b"%PDF-1.7 not an image", targets=TARGETS[:2])
    outcome = h.handle()
    assert outcome.action == "invalid"
    assert outcome.manifest is not None
    assert outcome.manifest.error is not None
    assert outcome.detail == outcome.manifest.error.message
    assert outcome.manifest.error.code == "unsupported_image"
    assert [(r.name, r.status, r.error) for r in outcome.records] == [("*", "failed", outcome.manifest.error)]
    assert h.manifest()["variants"] == [{**h.manifest()["variants"][0], "name": "*", "status": "failed"}]
    assert h.provider.calls == 0


def test_a_truncated_header_is_refused_as_it_is(make: Any) -> None:
    h = make()
    h.upload(body=solid_png(64, 48)[:20], targets=TARGETS[:1])
    outcome = h.handle()
    assert outcome.action == "invalid"
    assert "header does not parse:" in outcome.detail
    assert [first for key, first in h.storage.reads if key == SOURCE] == [64 * 1024]


def test_a_large_header_is_read_further_once(make: Any) -> None:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), (1, 2, 3)).save(buffer, "JPEG", icc_profile=b"\x00" * 100_000)
    h = make(source_check="off")
    h.upload("uploads/big.jpg", buffer.getvalue(), targets=TARGETS[:1])
    outcome = h.handle("uploads/big.jpg")
    assert outcome.records[0].status == "created"
    assert [first for key, first in h.storage.reads if key == "uploads/big.jpg"] == [64 * 1024, 1024 * 1024]


def test_a_source_image_is_loaded_once() -> None:
    loads: list[int] = []
    source = SourceImage("https://x", lambda: loads.append(1) or b"bytes")  # type: ignore[func-returns-value]
    assert (source.load(), source.load(), loads) == (b"bytes", b"bytes", [1])


def test_the_prepared_copy_is_a_png_kept_while_needed(make: Any) -> None:
    h = make()
    key, out = "uploads/phone.jpg", "reframed/phone.jpg/"
    h.upload(key, rotated_jpeg(), targets=TARGETS[:1])
    h.handle(key)
    prepared = h.storage.head(out + PREPARED_NAME)
    assert prepared is not None
    assert prepared.content_type == "image/png"


def test_a_header_that_never_parses_is_refused_after_the_last_read(make: Any) -> None:
    h = make()
    junk = b"\x89PNG\r\n\x1a\n" + b"\x00" * (2 * 1024 * 1024)
    h.upload(body=junk, targets=TARGETS[:1])
    outcome = h.handle()
    assert (outcome.action, outcome.detail) == (
        "invalid",
        "the PNG header does not parse in the first 1,048,576 bytes: refused without reading more",
    )
    h.upload(body=junk[: 100 * 1024], targets=TARGETS[:1])  # all of it read by the second read
    assert h.handle().detail.startswith("the PNG header does not parse: ")


def test_a_source_overwritten_while_it_is_prepared_is_not_sent(make: Any) -> None:
    h = make()
    key = "uploads/phone.jpg"
    h.upload(key, rotated_jpeg(), targets=TARGETS[:1])
    source = h.storage.head(key)
    assert source is not None

    def overwrite(read_key: str, first_bytes: int | None) -> None:
        if read_key == key and first_bytes == source.size:  # the whole source, read to prepare it
            h.storage.before_read = None
            h.storage.put(key, rotated_jpeg((0, 0, 255)))

    h.storage.before_read = overwrite
    outcome = h.handle(key)
    assert outcome.records[0].error is not None
    assert outcome.records[0].error.code == "source_changed"
    assert outcome.records[0].error.message == "the source was overwritten or deleted while it was prepared"
    assert h.provider.calls == 0
    assert h.storage.keys("reframed/phone.jpg/") == ["reframed/phone.jpg/manifest.json"]
