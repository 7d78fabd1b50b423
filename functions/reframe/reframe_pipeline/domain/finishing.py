"""Image finishing: a provider's generation cropped to the target's exact size, then each deliverable (every
format at every width) encoded and marked with its XMP, touching the provider's pixels only where something
was asked."""

from __future__ import annotations

import io
from dataclasses import dataclass

from PIL import Image

from reframe_pipeline.domain.cropping import Box, crop_for
from reframe_pipeline.domain.imaging import XMP_INSERTABLE, encode, fit_exact, insert_xmp, sniff
from reframe_pipeline.domain.planning import PlannedVariant
from reframe_pipeline.domain.renditions import RenditionSpec
from reframe_pipeline.domain.resolutions import Size


@dataclass(frozen=True)
class Rendered:
    """One deliverable's bytes, before optimizing and signing."""

    spec: RenditionSpec
    fmt: str  # a FORMATS key: the spec's, or the generation's own for "original"
    body: bytes


def render_all(
    body: bytes, variant: PlannedVariant, xmp: bytes, source_box: Box | None = None
) -> tuple[list[Rendered], bool]:
    """Every deliverable of ``variant`` from its generation's bytes, marked with ``xmp``: cropped once to the
    exact size (toward the target's focus, around ``source_box`` when known), then each width in each format.
    A rendition in the generation's own JPEG or PNG at its own size keeps its bytes (XMP inserted, pixels
    untouched). Also says whether the crop had to cut into the source."""
    own = sniff(body[:32]) or "png"
    final = variant.final_size
    canvas: tuple[Image.Image, bytes | None, bool] | None = None
    rendered = []
    for spec in variant.renditions:
        fmt = own if spec.format == "original" else spec.format
        if not variant.needs_crop and spec.size == final and fmt == own and fmt in XMP_INSERTABLE:
            rendered.append(Rendered(spec, fmt, insert_xmp(body, fmt, xmp)))
            continue
        canvas = canvas or _canvas(body, variant, source_box)
        image, icc, _ = canvas
        sized = image if spec.size == final else image.resize(spec.size, Image.Resampling.LANCZOS)
        rendered.append(Rendered(spec, fmt, encode(sized, fmt, variant.output.quality, icc, xmp)))
    return rendered, bool(canvas and canvas[2])


def _canvas(body: bytes, variant: PlannedVariant, source_box: Box | None) -> tuple[Image.Image, bytes | None, bool]:
    """The generation at the target's exact size, its colour profile, and whether the crop cut into the source."""
    with Image.open(io.BytesIO(body)) as image:
        icc = image.info.get("icc_profile")
        if not variant.needs_crop:
            return image.copy(), icc, False
        if variant.focus == "center" and source_box is None:
            return fit_exact(image, variant.final_size), icc, False
        crop = crop_for(Size(*image.size), variant.final_size, variant.focus, source_box)
        return fit_exact(image, variant.final_size, crop.window), icc, crop.source_cropped
