"""Provenance: every variant carries XMP with its IPTC digital source type, the tool and the model, and
keeps the source's colour profile, creator and rights; read back with exiftool."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image, ImageCms

from ..exiftool import needs_exiftool, read_tags
from .conftest import BUCKET, Stack, s3_event
from .images import encoded, gradient

COMPOSITE_WITH_TRAINED = "http://cv.iptc.org/newscodes/digitalsourcetype/compositeWithTrainedAlgorithmicMedia"
COMPOSITE_SYNTHETIC = "http://cv.iptc.org/newscodes/digitalsourcetype/compositeSynthetic"
SRGB = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
ARTIST, COPYRIGHT = 0x013B, 0x8298

pytestmark = needs_exiftool


def credited_jpeg() -> bytes:
    exif = Image.Exif()
    exif[ARTIST] = "Jane Photographer"
    exif[COPYRIGHT] = "(c) 2026 Jane Photographer"
    return encoded(gradient((400, 300)), "JPEG", icc_profile=SRGB, exif=exif.tobytes())


@pytest.mark.parametrize(
    ("fmt", "target", "ext"),
    [
        ("original", {"resolution": "1024x1024"}, "jpg"),  # the provider's JPEG (as Segmind answers), XMP inserted
        ("original", {"size": "1200x628"}, "jpg"),  # cropped, re-encoded
        ("jpeg", {"resolution": "1024x1024"}, "jpg"),
        ("webp", {"resolution": "1024x1024"}, "webp"),
        ("avif", {"resolution": "1024x1024"}, "avif"),
    ],
)
def test_a_generated_variant_says_how_it_was_made(stack: Stack, tmp_path: Path, fmt: str, target: dict, ext: str):
    stack.put("uploads/p.jpg", credited_jpeg())
    stack.put("uploads/p.jpg.reframe.json", {"version": 1, "output": {"format": fmt}, "targets": [target]})

    stack.invoke(s3_event("uploads/p.jpg"))

    [variant] = stack.read_json("reframed/p.jpg/manifest.json")["variants"]
    assert variant["status"] == "created"
    assert variant["key"].endswith(f".{ext}")
    assert variant["provenance"] == {
        "digital_source_type": COMPOSITE_WITH_TRAINED,
        "model": "Ideogram 3.0 Reframe (Segmind)",
        "signed": False,
    }
    body = stack.s3.get_object(Bucket=BUCKET, Key=variant["key"])["Body"].read()
    tags = read_tags(body, tmp_path)
    assert tags["XMP-iptcExt:DigitalSourceType"] == COMPOSITE_WITH_TRAINED
    assert tags["XMP-iptcExt:AISystemUsed"] == "Ideogram 3.0 Reframe (Segmind)"
    assert tags["XMP-xmp:CreatorTool"] == "Reframe Pipeline"
    assert tags["XMP-dc:Creator"] == "Jane Photographer"  # the source's credits travel
    assert tags["XMP-dc:Rights"] == "(c) 2026 Jane Photographer"


def test_the_local_engine_marks_a_composite_without_a_model_and_keeps_the_profile(stack: Stack, tmp_path: Path):
    stack.configure(REFRAME_PROVIDER="local")
    stack.put("uploads/l.jpg", credited_jpeg())
    stack.put(
        "uploads/l.jpg.reframe.json", {"version": 1, "output": {"format": "jpeg"}, "targets": [{"size": "1200x628"}]}
    )

    stack.invoke(s3_event("uploads/l.jpg"))

    [variant] = stack.read_json("reframed/l.jpg/manifest.json")["variants"]
    assert variant["provenance"] == {"digital_source_type": COMPOSITE_SYNTHETIC, "model": None, "signed": False}
    body = stack.s3.get_object(Bucket=BUCKET, Key=variant["key"])["Body"].read()
    tags = read_tags(body, tmp_path)
    assert tags["XMP-iptcExt:DigitalSourceType"] == COMPOSITE_SYNTHETIC
    assert "XMP-iptcExt:AISystemUsed" not in tags
    assert tags["XMP-dc:Creator"] == "Jane Photographer"
    assert stack.image(variant["key"]).info["icc_profile"] == SRGB


def test_an_existing_variant_keeps_its_provenance_in_the_manifest(stack: Stack):
    stack.put("uploads/e.jpg", credited_jpeg())
    stack.put("uploads/e.jpg.reframe.json", {"version": 1, "targets": [{"resolution": "1024x1024"}]})
    stack.invoke(s3_event("uploads/e.jpg"))
    stack.invoke(s3_event("uploads/e.jpg"))

    [variant] = stack.read_json("reframed/e.jpg/manifest.json")["variants"]
    assert variant["status"] == "existing"
    assert variant["provenance"]["digital_source_type"] == COMPOSITE_WITH_TRAINED
