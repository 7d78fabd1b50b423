"""Image facts from bytes: format by magic bytes, verification, exact-size cropping, output encoding."""

from __future__ import annotations

import io
from dataclasses import dataclass

from PIL import Image, ImageOps

from reframe_pipeline.domain.resolutions import Size


@dataclass(frozen=True)
class ImageFormat:
    name: str  # Pillow's format name
    mime: str
    ext: str


FORMATS = {
    "jpeg": ImageFormat("JPEG", "image/jpeg", "jpg"),
    "png": ImageFormat("PNG", "image/png", "png"),
    "webp": ImageFormat("WEBP", "image/webp", "webp"),
    "gif": ImageFormat("GIF", "image/gif", "gif"),
    "bmp": ImageFormat("BMP", "image/bmp", "bmp"),
    "tiff": ImageFormat("TIFF", "image/tiff", "tiff"),
    "heic": ImageFormat("HEIF", "image/heic", "heic"),
    "avif": ImageFormat("AVIF", "image/avif", "avif"),
}
# What the providers take as they are; the rest is converted first.
PROVIDER_FORMATS = frozenset({"jpeg", "png", "webp"})


def sniff(head: bytes) -> str | None:
    """The format key of ``FORMATS`` from the first bytes, or None when it is no image we handle."""
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "gif"
    if head[:2] == b"BM" and len(head) >= 26:
        return "bmp"
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return "tiff"
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in (b"avif", b"avis"):
            return "avif"
        if brand in (b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1"):
            return "heic"
    return None


class ImageCheckError(ValueError):
    """Bytes that are not a complete image of the expected size."""


class WrongSizeError(ImageCheckError):
    """A whole image, but not of the size asked for."""


def verify(body: bytes, expected: Size | None = None) -> tuple[str, Size]:
    """Check that bytes are a whole, decodable image (of ``expected`` size); returns (format, size)."""
    fmt = sniff(body[:32])
    if fmt is None:
        raise ImageCheckError("the bytes are not a JPEG, PNG, WebP or other known image")
    try:
        with Image.open(io.BytesIO(body)) as image:
            size = Size(*image.size)
            if expected is not None and size != expected:
                raise WrongSizeError(f"image is {size}, expected {expected}")
            image.load()  # decodes every byte: catches truncated bodies
    except ImageCheckError:
        raise
    except Exception as exc:  # Pillow raises many types for broken data
        raise ImageCheckError(f"the image does not decode: {exc}") from None
    return fmt, size


def fit_exact(image: Image.Image, size: Size) -> Image.Image:
    """Resize to cover ``size`` and centre-crop to exactly those pixels."""
    return ImageOps.fit(image, (size.width, size.height), method=Image.Resampling.LANCZOS, centering=(0.5, 0.5))


def encode(image: Image.Image, fmt: str, quality: int = 90, icc_profile: bytes | None = None) -> bytes:
    """Encode to a ``FORMATS`` key, keeping the colour profile."""
    spec = FORMATS[fmt]
    if fmt == "jpeg" and image.mode not in ("RGB", "L", "CMYK"):
        image = image.convert("RGB")
    options: dict[str, object] = {}
    if fmt in ("jpeg", "webp", "avif"):
        options["quality"] = quality
    if fmt == "png":
        options["compress_level"] = 6
    if icc_profile:
        options["icc_profile"] = icc_profile
    out = io.BytesIO()
    image.save(out, spec.name, **options)
    return out.getvalue()
