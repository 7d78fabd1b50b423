"""Image facts from bytes: format by magic bytes, verification, exact-size cropping, output encoding,
XMP embedding."""

from __future__ import annotations

import io
import struct
import zlib
from dataclasses import dataclass

from PIL import Image, ImageOps

from reframe_pipeline.domain.cropping import Box
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
            if fmt == "jpeg":
                # Every byte is still read and entropy-decoded (a truncated body fails alike); only the pixels
                # are made at an eighth of the size, which takes a third of the CPU.
                image.draft(image.mode, (size.width // 8, size.height // 8))
            image.load()  # decodes every byte: catches truncated bodies
    except ImageCheckError:
        raise
    except Exception as exc:  # Pillow raises many types for broken data
        raise ImageCheckError(f"the image does not decode: {exc}") from None
    return fmt, size


def fit_exact(image: Image.Image, size: Size, window: Box | None = None) -> Image.Image:
    """Resize to cover ``size`` and crop to exactly those pixels: the centre, or ``window`` of the image
    (``cropping.crop_for``) scaled to ``size``."""
    if window is None:
        return ImageOps.fit(image, (size.width, size.height), method=Image.Resampling.LANCZOS, centering=(0.5, 0.5))
    area = (window.x, window.y, window.x + window.width, window.y + window.height)
    return image.resize((size.width, size.height), Image.Resampling.LANCZOS, box=area)


# Encoder effort, measured on the sample photos at 1344x704 (docs/benchmarks.md): WebP method 6 saves 2 % over 4
# at twice the CPU (80 ms per megapixel at 4); AVIF speed 6 is 7 % smaller than 7 at 1.7 times the CPU (540 ms per
# megapixel at 7), speed 4 another 1 % at 11 times. Each rendition's time comes out of UPLOAD_RESERVE_MS.
WEBP_METHOD = 4
AVIF_SPEED = 7


def encode(
    image: Image.Image, fmt: str, quality: int = 90, icc_profile: bytes | None = None, xmp: bytes | None = None
) -> bytes:
    """Encode to a ``FORMATS`` key, keeping the colour profile; with ``xmp`` (JPEG, PNG, WebP, AVIF)."""
    spec = FORMATS[fmt]
    if fmt == "jpeg" and image.mode not in ("RGB", "L", "CMYK"):
        image = image.convert("RGB")
    options: dict[str, object] = {}
    if fmt in ("jpeg", "webp", "avif"):
        options["quality"] = quality
    if fmt == "png":
        options["compress_level"] = 6
    if fmt == "webp":
        options["method"] = WEBP_METHOD
    if fmt == "avif":
        options["speed"] = AVIF_SPEED
    if icc_profile:
        options["icc_profile"] = icc_profile
    if xmp and fmt not in XMP_INSERTABLE:
        options["xmp"] = xmp
    out = io.BytesIO()
    image.save(out, spec.name, **options)
    return insert_xmp(out.getvalue(), fmt, xmp) if xmp and fmt in XMP_INSERTABLE else out.getvalue()


# Formats whose XMP is inserted into the bytes as they are, pixels untouched; WebP and AVIF are re-encoded.
XMP_INSERTABLE = frozenset({"jpeg", "png"})
_JPEG_XMP = b"http://ns.adobe.com/xap/1.0/\x00"
_PNG_XMP = b"XML:com.adobe.xmp\x00"


def insert_xmp(body: bytes, fmt: str, xmp: bytes) -> bytes:
    """``body`` with ``xmp`` as its only XMP packet: a JPEG APP1 segment after SOI (and JFIF's APP0), or a
    PNG iTXt chunk ``XML:com.adobe.xmp`` after IHDR (Pillow ignores ``xmp=`` for PNG)."""
    return _jpeg_with_xmp(body, xmp) if fmt == "jpeg" else _png_with_xmp(body, xmp)


def _jpeg_with_xmp(body: bytes, xmp: bytes) -> bytes:
    segments, pos = [], 2
    while body[pos : pos + 1] == b"\xff" and body[pos + 1] not in (0xDA, 0xD9):  # up to the scan
        end = pos + 2 + int.from_bytes(body[pos + 2 : pos + 4])
        segments.append(body[pos:end])
        pos = end
    kept = [seg for seg in segments if not (seg[1] == 0xE1 and seg[4:].startswith(_JPEG_XMP))]
    lead = 1 if kept and kept[0][1] == 0xE0 else 0  # JFIF's APP0 must stay first
    payload = _JPEG_XMP + xmp
    ours = b"\xff\xe1" + (len(payload) + 2).to_bytes(2) + payload
    return b"\xff\xd8" + b"".join(kept[:lead]) + ours + b"".join(kept[lead:]) + body[pos:]


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _png_with_xmp(body: bytes, xmp: bytes) -> bytes:
    chunks, pos = [], 8
    while pos < len(body):
        length = int.from_bytes(body[pos : pos + 4])
        chunks.append(body[pos : pos + 12 + length])
        pos += 12 + length
    kept = [c for c in chunks if not (c[4:8] == b"iTXt" and c[8:].startswith(_PNG_XMP))]
    # keyword, uncompressed, no language, no translated keyword, then the packet
    ours = _png_chunk(b"iTXt", _PNG_XMP + b"\x00\x00" + b"\x00\x00" + xmp)
    return body[:8] + kept[0] + ours + b"".join(kept[1:])
