"""The deliverables' lossless optimizers (adapters/optimizers.py): smaller bytes, the same pixels, the
XMP and colour profile kept; JPEG progressive."""

from __future__ import annotations

import io

import pytest
from PIL import Image, ImageCms

from reframe_pipeline.adapters.optimizers import optimize
from reframe_pipeline.domain.imaging import encode
from reframe_pipeline.domain.provenance import provenance_for, source_credits, xmp_packet

from .images import opened

PACKET = xmp_packet(provenance_for("segmind"), source_credits(b""))
SRGB = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def photo() -> Image.Image:
    """A photo-like picture: smooth gradients with detail, which encoders do not already shrink to nothing."""
    gradient = Image.radial_gradient("L").resize((320, 200))
    return Image.merge("RGB", (gradient, Image.linear_gradient("L").resize((320, 200)), gradient.rotate(90)))


@pytest.mark.parametrize("fmt", ["jpeg", "png"])
def test_smaller_with_the_same_pixels_and_marks(fmt: str) -> None:
    before = encode(photo(), fmt, 90, SRGB, PACKET)
    after = optimize(before, fmt)
    assert len(after) < len(before)
    old, new = opened(before), opened(after)
    assert (new.size, new.convert("RGB").tobytes()) == (old.size, old.convert("RGB").tobytes())
    assert after.count(b"DigitalSourceType") == 1  # the provenance XMP, once
    assert new.info.get("icc_profile") == SRGB


def test_jpeg_becomes_progressive() -> None:
    before = encode(photo(), "jpeg", 90, None, PACKET)
    assert not opened(before).info.get("progressive")
    assert opened(optimize(before, "jpeg")).info.get("progressive")


def test_png_with_alpha_keeps_every_channel() -> None:
    image = photo().convert("RGBA")
    image.putalpha(Image.linear_gradient("L").resize(image.size))
    before = encode(image, "png", 90, None, PACKET)
    after = optimize(before, "png")
    assert opened(after).convert("RGBA").tobytes() == image.tobytes()


@pytest.mark.parametrize("fmt", ["webp", "avif"])
def test_other_formats_pass_as_they_are(fmt: str) -> None:
    body = encode(photo(), fmt, 80)
    assert optimize(body, fmt) is body


@pytest.mark.parametrize("fmt", ["jpeg", "png"])
def test_broken_bytes_are_left_alone(fmt: str) -> None:
    """An optimizer that fails never holds a deliverable up (logged)."""
    body = encode(photo(), fmt, 90)[:200]
    assert optimize(body, fmt) == body


def test_never_larger() -> None:
    tiny = io.BytesIO()
    Image.new("L", (1, 1)).save(tiny, "PNG", optimize=True)
    assert len(optimize(tiny.getvalue(), "png")) <= len(tiny.getvalue())
