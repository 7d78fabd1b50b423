"""Image finishing: a provider's generation cropped to the target's exact size, converted to its format and
marked with its XMP, touching the provider's pixels only where something was asked."""

from __future__ import annotations

import io
from typing import NamedTuple

from PIL import Image

from reframe_pipeline.domain.cropping import Box, crop_for
from reframe_pipeline.domain.imaging import XMP_INSERTABLE, encode, fit_exact, insert_xmp, sniff
from reframe_pipeline.domain.planning import PlannedVariant
from reframe_pipeline.domain.resolutions import Size


class Finished(NamedTuple):
    body: bytes
    fmt: str  # a FORMATS key
    source_cropped: bool  # the exact-size crop had to cut into the source's box


def finish_image(body: bytes, variant: PlannedVariant, xmp: bytes, source_box: Box | None = None) -> Finished:
    """Crop to exact sizes (toward the target's focus, around ``source_box`` when known) and convert
    formats only when asked, and mark with ``xmp``: inserted into a JPEG or PNG kept as it is (pixels
    untouched), encoded with the image otherwise."""
    fmt = sniff(body[:32]) or "png"
    target = fmt if variant.output.format == "original" else variant.output.format
    if not variant.needs_crop and target == fmt and fmt in XMP_INSERTABLE:
        return Finished(insert_xmp(body, fmt, xmp), fmt, False)
    cropped = False
    with Image.open(io.BytesIO(body)) as image:
        icc = image.info.get("icc_profile")
        if not variant.needs_crop:
            result = image.copy()
        elif variant.focus == "center" and source_box is None:
            result = fit_exact(image, variant.final_size)
        else:
            crop = crop_for(Size(*image.size), variant.final_size, variant.focus, source_box)
            result, cropped = fit_exact(image, variant.final_size, crop.window), crop.source_cropped
    return Finished(encode(result, target, variant.output.quality, icc, xmp), target, cropped)
