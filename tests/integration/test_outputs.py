"""Output formats: converted only when asked, with the colour profile kept and the right type."""

from __future__ import annotations

import pytest
from PIL import Image, ImageCms

from .conftest import BUCKET, Stack, s3_event
from .images import encoded, gradient

SRGB = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


@pytest.mark.parametrize(
    ("fmt", "ext", "mime"),
    [
        ("original", "png", "image/png"),
        ("png", "png", "image/png"),
        ("jpeg", "jpg", "image/jpeg"),
        ("webp", "webp", "image/webp"),
        ("avif", "avif", "image/avif"),
    ],
)
def test_output_formats(stack: Stack, fmt: str, ext: str, mime: str):
    stack.configure(REFRAME_PROVIDER="local")
    stack.put("uploads/o.png", encoded(gradient((400, 300)), "PNG", icc_profile=SRGB))
    sidecar = {"version": 1, "output": {"format": fmt, "quality": 80}, "targets": [{"resolution": "1024x1024"}]}
    stack.put("uploads/o.png.reframe.json", sidecar)

    stack.invoke(s3_event("uploads/o.png"))

    key = f"reframed/o.png/1024x1024.{ext}"
    assert stack.s3.head_object(Bucket=BUCKET, Key=key)["ContentType"] == mime
    image = stack.image(key)
    assert image.size == (1024, 1024)
    assert image.format == {"jpg": "JPEG"}.get(ext, ext.upper())
    assert image.info.get("icc_profile") == SRGB  # the source's profile travels to every variant


def test_exact_size_keeps_the_profile(stack: Stack):
    stack.configure(REFRAME_PROVIDER="local")
    stack.put("uploads/p.jpg", encoded(gradient((400, 300)), "JPEG", icc_profile=SRGB))
    stack.put(
        "uploads/p.jpg.reframe.json", {"version": 1, "output": {"format": "jpeg"}, "targets": [{"size": "1200x628"}]}
    )
    stack.invoke(s3_event("uploads/p.jpg"))
    image: Image.Image = stack.image("reframed/p.jpg/1200x628.jpg")
    assert image.size == (1200, 628)
    assert image.info.get("icc_profile") == SRGB
