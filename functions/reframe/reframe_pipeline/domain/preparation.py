"""Source preparation with a fast path (docs/architecture.md, "Sources"). The header alone (a ranged GET)
tells format, pixel size and EXIF orientation; only a source that needs fixing is downloaded,
fixed once, and stored as ``_prepared.png`` beside its variants."""

from __future__ import annotations

import hashlib
import io
import math
import threading
from dataclasses import dataclass
from functools import cache

from PIL import Image, UnidentifiedImageError

from reframe_pipeline.domain.errors import PermanentError
from reframe_pipeline.domain.imaging import PROVIDER_FORMATS, encode, sniff
from reframe_pipeline.domain.local_engine import pad_to_square
from reframe_pipeline.domain.resolutions import Size


@cache
def _heif_support() -> None:
    """HEIC/HEIF decoding, registered only when such a file arrives (it costs import time)."""
    import pillow_heif

    pillow_heif.register_heif_opener()


ORIENTATION_TAG = 0x0112
# Our own limit (MAX_DECODE_PIXELS) is checked on the header before anything user-supplied is
# decoded (probe, then prepare); Pillow's global guard would answer first with another limit.
Image.MAX_IMAGE_PIXELS = None


# EXIF orientation -> the transposition that makes the pixels upright (as ImageOps.exif_transpose).
_UPRIGHT = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
# Modes Lanczos resamples as they are: their conversion to RGB(A) waits until the pixels are few.
_RESIZABLE_MODES = ("L", "RGB", "RGBA")
# A batch's records run in parallel threads; the memory budget is for one full-size source.
_ONE_AT_A_TIME = threading.Lock()
# The memory model of prepare(), which sizes MAX_DECODE_PIXELS' default: Pillow holds RGB(A) pixels
# in 4 bytes, and at most two full-size copies are alive at once (the decoded source and its
# conversion, to RGB(A) or to premultiplied alpha for resampling); everything after is downscaled.
BYTES_PER_PIXEL = 4
FULL_SIZE_COPIES = 2


def decode_pixels_for(memory_mb: int) -> int:
    """The most pixels prepare() may decode in a function with ``memory_mb`` of memory. A quarter of
    it and 128 MB more are kept for the interpreter, libraries, the source's bytes and smaller copies."""
    usable_mb = memory_mb * 3 // 4 - 128
    return usable_mb * 1024 * 1024 // (BYTES_PER_PIXEL * FULL_SIZE_COPIES)


class UnsupportedImageError(PermanentError):
    code = "unsupported_image"


@dataclass(frozen=True)
class Limits:
    max_input_bytes: int  # above this the object is refused unread
    max_bytes: int  # the provider's limit on the source file
    max_pixels: int  # above this the source is downscaled
    max_decode_pixels: int  # above this the source is refused undecoded: it would not fit in memory
    square: bool  # the provider needs square sources

    @property
    def recipe(self) -> str:
        """What decides how a given source is prepared (the limits that change pixels, not those that
        refuse): with the source's ETag, it decides the image the provider is sent."""
        return f"bytes={self.max_bytes};pixels={self.max_pixels};square={self.square}"


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
            orientation = _orientation(image)
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


def _orientation(image: Image.Image) -> int:
    if image.format == "PNG":
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
    if reasons:  # only a source to prepare is decoded
        _check_pixels(facts.size, limits)
    return reasons


def _check_pixels(size: Size, limits: Limits) -> None:
    pixels = size.width * size.height
    if pixels > limits.max_decode_pixels:
        raise UnsupportedImageError(
            f"the image claims {size} ({pixels / 1e6:.0f} megapixels), over the limit of "
            f"{limits.max_decode_pixels / 1e6:.0f} (MAX_DECODE_PIXELS, sized to the function's memory):"
            " refused without decoding (decompression bomb guard)"
        )


def recipe(reasons: list[str], limits: Limits) -> str:
    """What a prepared copy was made for: one made for other reasons or limits is made again."""
    return hashlib.sha256(f"{reasons}|{limits}".encode()).hexdigest()[:16]


def prepare(data: bytes, limits: Limits) -> bytes:
    """Upright, RGB(A), within the pixel and byte limits, square if asked: a PNG."""
    with _ONE_AT_A_TIME:  # the memory budget (decode_pixels_for) is for one full-size source
        image, icc = _decoded_within(data, limits)
    if limits.square and image.width != image.height:
        image = pad_to_square(image)
    body = encode(image, "png", icc_profile=icc)
    while len(body) > limits.max_bytes:  # PNG of a photo can outgrow the byte limit: shrink further
        factor = 0.85 * math.sqrt(limits.max_bytes / len(body))
        image = _resized(image, (max(1, int(image.width * factor)), max(1, int(image.height * factor))))
        body = encode(image, "png", icc_profile=icc)
    return body


def _decoded_within(data: bytes, limits: Limits) -> tuple[Image.Image, bytes | None]:
    """The source decoded and brought within MAX_SOURCE_PIXELS, upright and RGB(A), with its colour
    profile. At most FULL_SIZE_COPIES copies of the full-size pixels are alive at any moment."""
    if sniff(data[:32]) == "heic":
        _heif_support()
    try:
        # Not in a ``with``: over a buffer there is nothing to close, and the name must be free to
        # drop the full-size pixels as soon as a smaller copy exists.
        image: Image.Image = Image.open(io.BytesIO(data))
        image.seek(0)  # an animated GIF or multi-page TIFF: its first frame
        size = Size(*image.size)
        _check_pixels(size, limits)
        image.draft(None, _fit(size, limits))  # JPEG: decoded at 1/2, 1/4 or 1/8 scale when that still fits
        image.load()
        orientation = _orientation(image)  # before any conversion: a TIFF keeps it in tags, not in .info
        icc = image.info.get("icc_profile")
        mode = "RGBA" if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info else "RGB"
        if image.mode not in _RESIZABLE_MODES or "transparency" in image.info:
            image = image.convert(mode)  # at full size, once; palette and colour-key pixels do not resample
        target = _fit(Size(*image.size), limits)
        if image.size != target and image.mode == "RGBA":
            # Pillow resamples alpha premultiplied, from a copy it makes: let that copy be the only one.
            image = image.convert("RGBa")
        image = _resized(image, target)
        if image.mode != mode:
            image = image.convert(mode)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise UnsupportedImageError(f"the image does not decode: {_reason(exc)}") from None
    if (method := _UPRIGHT.get(orientation)) is not None:
        image = image.transpose(method)  # on the downscaled pixels
    return image, icc


def _fit(size: Size, limits: Limits) -> tuple[int, int]:
    """The size to downscale to: within MAX_SOURCE_PIXELS, counting the square padding if asked."""
    side = max(size.width, size.height)
    pixels = side * side if limits.square else size.width * size.height
    if pixels <= limits.max_pixels:
        return size.width, size.height
    factor = math.sqrt(limits.max_pixels / pixels)
    return max(1, int(size.width * factor)), max(1, int(size.height * factor))


def _resized(image: Image.Image, size: tuple[int, int]) -> Image.Image:
    if image.size == size:
        return image
    # reducing_gap: a cheap integer reduction first, then Lanczos on far fewer pixels.
    return image.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)
