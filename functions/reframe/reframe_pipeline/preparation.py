"""Source preparation with a fast path (facts page, section 5). The header alone (a ranged GET)
tells format, pixel size and EXIF orientation; only a source that needs fixing is downloaded,
fixed once, and stored as ``_prepared.png`` beside its variants."""

from __future__ import annotations

import hashlib
import io
import math
from dataclasses import dataclass
from functools import cache

from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import PermanentError
from .imaging import PROVIDER_FORMATS, encode, sniff
from .local_engine import pad_to_square
from .resolutions import Size


@cache
def _heif_support() -> None:
    """HEIC/HEIF decoding, registered only when such a file arrives (it costs import time)."""
    import pillow_heif

    pillow_heif.register_heif_opener()


ORIENTATION_TAG = 0x0112
# Our own limit (MAX_DECODE_PIXELS) is checked on the header before anything user-supplied is
# decoded (probe, then prepare); Pillow's global guard would answer first with another limit.
Image.MAX_IMAGE_PIXELS = None


class UnsupportedImageError(PermanentError):
    code = "unsupported_image"


@dataclass(frozen=True)
class Limits:
    max_input_bytes: int  # above this the object is refused unread
    max_bytes: int  # the provider's limit on the source file
    max_pixels: int  # above this the source is downscaled
    max_decode_pixels: int  # above this the source is refused: a decompression bomb
    square: bool  # the provider needs square sources


@dataclass(frozen=True)
class SourceFacts:
    format: str
    size: Size
    orientation: int


class HeaderIncompleteError(Exception):
    """The header reaches past the bytes read (a large EXIF or ICC block): read more."""


def check_input_size(object_bytes: int, limits: Limits) -> None:
    """Before anything past the first header bytes is read: S3 objects reach 5 GB."""
    if object_bytes == 0:
        raise UnsupportedImageError("the object is empty (0 bytes)")
    if object_bytes > limits.max_input_bytes:
        raise UnsupportedImageError(
            f"the object is {object_bytes:,} bytes, over the limit of {limits.max_input_bytes:,}"
            " (setting MAX_INPUT_BYTES): refused without reading it"
        )


def _reason(exc: Exception) -> str:
    # Pillow's "cannot identify image file <_io.BytesIO object at 0x...>" names our buffer, not the problem.
    return "not a readable file of that format" if isinstance(exc, UnidentifiedImageError) else str(exc)


def probe(head: bytes, complete: bool, final: bool = False) -> SourceFacts:
    """Facts from the first bytes of the object. ``complete`` says whether ``head`` is the whole
    object, ``final`` whether no more of it will be read: then a header that does not parse is an
    error, not a reason to read more."""
    fmt = sniff(head[:32])
    if fmt is None:
        raise UnsupportedImageError(
            "not a supported image: JPEG, PNG, WebP, HEIC/HEIF, AVIF, TIFF, BMP or GIF, judged by content"
        )
    if fmt == "heic":
        _heif_support()
    try:
        with Image.open(io.BytesIO(head)) as image:  # reads the header only, decodes no pixels
            size = Size(*image.size)
            orientation = _orientation(image, fmt)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        if complete:
            raise UnsupportedImageError(f"the {fmt.upper()} header does not parse: {_reason(exc)}") from None
        if final:
            raise UnsupportedImageError(
                f"the {fmt.upper()} header does not parse in the first {len(head):,} bytes:"
                " refused without reading more"
            ) from None
        raise HeaderIncompleteError from exc
    if size.width < 1 or size.height < 1:
        raise UnsupportedImageError(f"the image claims an empty size ({size})")
    return SourceFacts(fmt, size, orientation)


def _orientation(image: Image.Image, fmt: str) -> int:
    if fmt == "png":
        # Pillow's getexif() on a PNG decodes every pixel looking for a trailing eXIf chunk;
        # only an eXIf chunk before the pixel data (already in .info) is read here.
        exif = Image.Exif()
        raw = image.info.get("exif")
        if isinstance(raw, bytes):
            exif.load(raw)
    else:
        exif = image.getexif()
    return int(exif.get(ORIENTATION_TAG, 1) or 1)


def reasons_to_prepare(facts: SourceFacts, object_bytes: int, limits: Limits) -> list[str]:
    _check_pixels(facts.size, limits)
    pixels = facts.size.width * facts.size.height
    reasons = []
    if facts.orientation not in (0, 1):
        reasons.append("exif-orientation")
    if facts.format not in PROVIDER_FORMATS:
        reasons.append(f"format-{facts.format}")
    if object_bytes > limits.max_bytes:
        reasons.append("too-many-bytes")
    if pixels > limits.max_pixels:
        reasons.append("too-many-pixels")
    if limits.square and facts.size.width != facts.size.height:
        reasons.append("not-square")
    return reasons


def _check_pixels(size: Size, limits: Limits) -> None:
    pixels = size.width * size.height
    if pixels > limits.max_decode_pixels:
        raise UnsupportedImageError(
            f"the image claims {size} ({pixels / 1e6:.0f} megapixels), over the limit of "
            f"{limits.max_decode_pixels / 1e6:.0f}: refused without decoding (decompression bomb guard)"
        )


def recipe(reasons: list[str], limits: Limits) -> str:
    """What a prepared copy was made for: one made for other reasons or limits is made again."""
    return hashlib.sha256(f"{reasons}|{limits}".encode()).hexdigest()[:16]


def prepare(data: bytes, limits: Limits) -> bytes:
    """Upright, RGB(A), within the pixel and byte limits, square if asked: a PNG."""
    if sniff(data[:32]) == "heic":
        _heif_support()
    try:
        with Image.open(io.BytesIO(data)) as opened:
            opened.seek(0)  # an animated GIF or multi-page TIFF: its first frame
            _check_pixels(Size(*opened.size), limits)
            image = ImageOps.exif_transpose(opened)
            image.load()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise UnsupportedImageError(f"the image does not decode: {_reason(exc)}") from None
    icc = image.info.get("icc_profile")
    image = image.convert("RGBA" if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info else "RGB")
    if limits.square and image.width != image.height:
        image = pad_to_square(image)
    pixels = image.width * image.height
    if pixels > limits.max_pixels:
        image = _scaled(image, math.sqrt(limits.max_pixels / pixels))
    body = encode(image, "png", icc_profile=icc)
    while len(body) > limits.max_bytes:  # PNG of a photo can outgrow the byte limit: shrink further
        image = _scaled(image, 0.85 * math.sqrt(limits.max_bytes / len(body)))
        body = encode(image, "png", icc_profile=icc)
    return body


def _scaled(image: Image.Image, factor: float) -> Image.Image:
    size = (max(1, int(image.width * factor)), max(1, int(image.height * factor)))
    return image.resize(size, Image.Resampling.LANCZOS)
