"""What is written: formats, exact sizes, the provider's pixels kept where nothing is asked, provenance, notices. In-memory ports only (tests/unit/fakes.py and orchestration_harness.py)."""

from __future__ import annotations

import io
from typing import Any

import pytest
from PIL import Image

from reframe_pipeline.application import deliverables
from reframe_pipeline.application.deadline import Deadline
from reframe_pipeline.application.generations import GENERATION_PREFIX
from reframe_pipeline.domain.imaging import ImageCheckError
from reframe_pipeline.domain.pricing import DEFAULT_PRICES
from tests.unit.fakes import FakeProvider, solid_png
from tests.unit.orchestration_harness import MANIFEST, OUT, PRICE, SOURCE, TARGETS


def test_outputs_carry_their_content_types_and_a_readable_manifest(make: Any) -> None:
    h = make(source_check="off")
    h.upload(targets=TARGETS[:1])
    outcome = h.handle()
    variant = h.storage.head(OUT + "1536x512.png")
    manifest = h.storage.head(MANIFEST)
    assert variant is not None and manifest is not None
    assert (variant.content_type, manifest.content_type) == ("image/png", "application/json")
    assert manifest.metadata == {}
    assert h.storage.body(MANIFEST).startswith(b'{\n  "source": {\n    "bucket"')
    generation = variant.metadata["generation"]
    size = variant.size
    assert outcome.records[0].model_dump(exclude={"latency_ms"}) == {
        "name": "1536x512",
        "key": OUT + "1536x512.png",
        "status": "created",
        "width": 1536,
        "height": 512,
        "resolution": "1536x512",
        "provider": "segmind",
        "seed": 4242,  # the provider's, when the sidecar names none
        "param_hash": variant.metadata["params-hash"],
        "rendering_speed": "DEFAULT",
        "cost_usd": PRICE,
        "attempts": 1,
        "error": None,
        "provenance": {
            "digital_source_type": "http://cv.iptc.org/newscodes/digitalsourcetype/compositeWithTrainedAlgorithmicMedia",
            "model": "Ideogram 3.0 Reframe (Segmind)",
            "signed": False,
        },
        "generation": generation,
        "generation_key": f"{OUT}{GENERATION_PREFIX}{generation}.png",
        "rendered_from_generation": False,
        "note": None,
        "fallback_reason": None,
        "source_match": None,
        "source_box": None,
        "warnings": [],
        "renditions": [
            {"key": OUT + "1536x512.png", "format": "png", "width": 1536, "height": 512, "bytes": size, "url": None}
        ],
        "srcset": {"png": OUT + "1536x512.png 1536w"},
    }
    again = h.handle().records[0]
    assert again.model_dump(exclude={"latency_ms"}) == {
        "name": "1536x512",
        "key": OUT + "1536x512.png",
        "status": "existing",
        "width": 1536,
        "height": 512,
        "resolution": "1536x512",
        "provider": "segmind",
        "seed": 4242,  # kept in the variant's metadata
        "param_hash": variant.metadata["params-hash"],
        "rendering_speed": "DEFAULT",
        "cost_usd": 0.0,
        "attempts": 0,
        "error": None,
        "provenance": {
            "digital_source_type": "http://cv.iptc.org/newscodes/digitalsourcetype/compositeWithTrainedAlgorithmicMedia",
            "model": "Ideogram 3.0 Reframe (Segmind)",
            "signed": False,
        },
        "generation": generation,
        "generation_key": None,
        "rendered_from_generation": False,
        "note": None,
        "fallback_reason": None,
        "source_match": None,
        "source_box": None,
        "warnings": [],
        "renditions": [
            {"key": OUT + "1536x512.png", "format": "png", "width": 1536, "height": 512, "bytes": size, "url": None}
        ],
        "srcset": {"png": OUT + "1536x512.png 1536w"},
    }


def test_an_exact_size_is_cropped_and_converted_keeping_the_colour_profile(make: Any) -> None:
    icc = b"\x00" * 128  # any bytes: Pillow carries the profile through, it does not parse it

    def with_profile(size: Any) -> bytes:
        buffer = io.BytesIO()
        Image.new("RGB", (size.width, size.height), (10, 20, 30)).save(buffer, "PNG", icc_profile=icc, compress_level=1)
        return buffer.getvalue()

    h = make(provider=FakeProvider(image=with_profile))
    h.upload(targets=[{"size": "1200x628", "name": "og"}], output={"format": "jpeg", "quality": 70})
    outcome = h.handle()
    assert [(r.key, r.width, r.height, r.resolution) for r in outcome.records] == [
        (OUT + "og.jpg", 1200, 628, str(h.provider.requests[0].resolution))
    ]
    head = h.storage.head(OUT + "og.jpg")
    assert head is not None
    assert head.content_type == "image/jpeg"
    with Image.open(io.BytesIO(h.storage.body(OUT + "og.jpg"))) as written:
        assert (written.format, written.size) == ("JPEG", (1200, 628))
        assert written.info.get("icc_profile") == icc


def test_the_original_format_is_kept_when_only_cropping(make: Any) -> None:
    h = make()
    h.upload(targets=[{"size": "1000x500", "name": "wide"}])
    h.handle()
    with Image.open(io.BytesIO(h.storage.body(OUT + "wide.png"))) as written:
        assert (written.format, written.size) == ("PNG", (1000, 500))


def test_a_target_name_with_dots_is_one_variant(make: Any) -> None:
    h = make()
    h.upload(targets=[{"resolution": "1536x512", "name": "v1.2"}])
    h.handle()
    h.sidecar(targets=[{"resolution": "1536x512", "name": "v1.2"}], output={"format": "jpeg"}, prune=True)
    h.handle()
    assert h.outputs() == [MANIFEST, OUT + "v1.2.jpg"]
    assert [r.status for r in h.handle().records] == ["existing"]  # and pruning keeps it, and its generation
    assert h.outputs() == [MANIFEST, OUT + "v1.2.jpg"]
    assert len(h.generations()) == 1


def test_the_provider_is_asked_for_what_the_sidecar_says(make: Any) -> None:
    h = make()
    h.storage.put("styles/brand.png", solid_png(8, 8))
    h.upload(
        targets=[
            {"resolution": "1536x512", "rendering_speed": "TURBO"},
            {"resolution": "512x1536", "style_codes": ["5A3F09C1"]},
        ],
        style_reference_images=None,
        color_palette={"name": "PASTEL"},
        seed=4321,
    )
    h.sidecar(
        targets=[
            {
                "resolution": "1536x512",
                "rendering_speed": "TURBO",
                "style_reference_images": ["styles/brand.png", "https://example.com/s.png"],
            },
            {"resolution": "512x1536", "style_codes": ["5A3F09C1"]},
        ],
        color_palette={"name": "PASTEL"},
        seed=4321,
    )
    h.handle()
    by_resolution = {str(r.resolution): r.params for r in h.provider.requests}
    turbo, coded = by_resolution["1536x512"], by_resolution["512x1536"]
    assert turbo.rendering_speed == "TURBO"
    assert turbo.style_reference_urls == (
        "https://bucket.s3.example/styles/brand.png?X-Amz-Expires=900",
        "https://example.com/s.png",
    )
    assert (turbo.seed, turbo.color_palette, turbo.style_codes) == (4321, {"name": "PASTEL"}, ())
    assert (coded.rendering_speed, coded.style_codes, coded.style_reference_urls) == ("DEFAULT", ("5A3F09C1",), ())
    turbo_record = next(r for r in h.manifest()["variants"] if r["name"] == "1536x512")
    assert turbo_record["cost_usd"] == DEFAULT_PRICES["segmind"]["TURBO"]
    assert turbo_record["seed"] == 4321


def test_the_providers_pixels_are_stored_untouched_when_nothing_is_asked(make: Any) -> None:
    h = make()
    h.upload(targets=TARGETS[:1])
    h.handle()
    stored = h.storage.body(OUT + "1536x512.png")
    with Image.open(io.BytesIO(stored)) as written, Image.open(io.BytesIO(solid_png(1536, 512))) as given:
        # The provenance mark is added beside the pixels; oxipng may store them otherwise (a palette), not change them.
        assert written.convert(given.mode).tobytes() == given.tobytes()
    assert b"compositeWithTrainedAlgorithmicMedia" in stored


def test_an_output_of_ours_that_fails_its_check_is_a_permanent_failure(
    make: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    checked: list[tuple[bytes, Any]] = []

    def failing_check(body: bytes, expected: Any = None) -> None:
        checked.append((body, expected))
        raise ImageCheckError("image is 1x1, expected 1000x500")

    monkeypatch.setattr(deliverables, "verify", failing_check)
    h = make()
    h.upload(targets=[{"size": "1000x500", "name": "wide"}, TARGETS[0]])
    outcome = h.handle()  # a bug of ours, not the user's input: no retry
    wide, plain = outcome.records
    assert wide.error is not None
    assert (wide.error.code, wide.error.message) == (
        "output_check",
        "output check failed: image is 1x1, expected 1000x500",
    )
    # Every stored output is checked, the provider's own bytes too: marking them changed them.
    assert plain.error is not None and plain.error.code == "output_check"
    assert sorted(str(expected) for _, expected in checked) == ["1000x500", "1536x512"]


def xmp_of(body: bytes) -> str:
    with Image.open(io.BytesIO(body)) as image:
        packet = image.info.get("xmp") or image.info.get("XML:com.adobe.xmp") or b""
    return packet.decode() if isinstance(packet, bytes) else packet


@pytest.mark.parametrize(
    ("output", "target", "key"),
    [
        ({"format": "original"}, {"resolution": "1536x512"}, OUT + "1536x512.png"),  # kept as it is
        ({"format": "jpeg"}, {"resolution": "1536x512"}, OUT + "1536x512.jpg"),  # converted
        ({"format": "webp"}, {"resolution": "1536x512"}, OUT + "1536x512.webp"),
        ({"format": "original"}, {"size": "1000x500", "name": "wide"}, OUT + "wide.png"),  # cropped
    ],
)
def test_every_variant_says_how_it_was_made_and_who_made_its_source(
    make: Any, output: dict[str, str], target: dict[str, str], key: str
) -> None:
    exif = Image.Exif()
    exif[0x013B] = "Jane Photographer"
    source = io.BytesIO()
    Image.new("RGB", (64, 48), (90, 60, 30)).save(source, "PNG", exif=exif.tobytes())
    h = make()
    h.upload(body=source.getvalue(), targets=[target], output=output)
    h.handle()
    packet = xmp_of(h.storage.body(key))
    assert "compositeWithTrainedAlgorithmicMedia" in packet
    assert "<rdf:li>Jane Photographer</rdf:li>" in packet


class RecordingNotifier:
    def __init__(self) -> None:
        self.published: list[tuple[Any, Deadline]] = []

    def publish(self, detail: Any, deadline: Deadline) -> None:
        self.published.append((detail, deadline))


def test_notices_are_sent_within_the_invocations_deadline_and_a_removal_names_the_variants(make: Any) -> None:
    h = make()
    notifier = h.pipeline.notifier = RecordingNotifier()
    h.upload(targets=TARGETS[:2])
    deadline = h.clock.deadline()
    h.handle(deadline=deadline)
    h.storage.delete([SOURCE])
    removal_deadline = h.clock.deadline()
    h.handle(action="removed", deadline=removal_deadline)

    (made, made_deadline), (gone, gone_deadline) = notifier.published
    assert (made.status, made_deadline) == ("completed", deadline)
    assert (gone.status, gone_deadline) == ("removed", removal_deadline)
    assert made_deadline is deadline and gone_deadline is removal_deadline
    assert sorted(v.key for v in gone.variants) == sorted(v.key for v in made.variants)
    assert gone.counts.removed == 2


def test_a_jpeg_answer_kept_as_it_is_keeps_the_providers_pixels(make: Any) -> None:
    def jpeg(size: Any) -> bytes:
        buffer = io.BytesIO()
        Image.new("RGB", (size.width, size.height), (10, 120, 30)).save(buffer, "JPEG", quality=80)
        return buffer.getvalue()

    h = make(provider=FakeProvider(image=jpeg))
    h.upload(targets=TARGETS[:1])
    (record,) = h.handle().records
    written = h.storage.body(record.key)
    answered = jpeg(h.provider.requests[0].resolution)
    assert written.startswith(b"\xff\xd8\xff")
    # Not re-encoded: mozjpeg's lossless optimizer rewrites the scan progressive, with the same coefficients.
    with Image.open(io.BytesIO(written)) as kept, Image.open(io.BytesIO(answered)) as given:
        assert kept.info.get("progressive") and kept.tobytes() == given.tobytes()
    assert "compositeWithTrainedAlgorithmicMedia" in xmp_of(written)
