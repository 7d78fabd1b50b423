"""The deliverables of one variant (docs/outputs.md, "Formats and widths"): every listed format at every
width, all rendered from the variant's one generation, and the ``srcset`` of each format."""

from __future__ import annotations

import io
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import quote

from PIL import Image

from reframe_pipeline.domain.cropping import Box, crop_for
from reframe_pipeline.domain.imaging import XMP_INSERTABLE, encode, fit_exact, insert_xmp, sniff
from reframe_pipeline.domain.resolutions import Size

if TYPE_CHECKING:  # planning builds its variants' rendition specs from this module
    from reframe_pipeline.domain.planning import PlannedVariant


@dataclass(frozen=True)
class RenditionSpec:
    format: str  # a FORMATS key, or "original" (the generation's own format)
    width: int
    height: int

    @property
    def size(self) -> Size:
        return Size(self.width, self.height)


def scaled(final: Size, width: int) -> Size:
    """``final`` at ``width`` pixels, the same aspect (heights rounded, never 0)."""
    return Size(width, max(1, round(width * final.height / final.width)))


def all_widths(final: Size, widths: Iterable[int] | None) -> tuple[int, ...]:
    """The target's own width and the smaller ones asked for, widest first."""
    return tuple(sorted({final.width, *(widths or ())}, reverse=True))


def specs(final: Size, formats: Iterable[str], widths: Iterable[int]) -> list[RenditionSpec]:
    """Each format (in the sidecar's order) at each width (widest first)."""
    sizes = [scaled(final, width) for width in widths]
    return [RenditionSpec(fmt, size.width, size.height) for fmt in formats for size in sizes]


def public_url(base: str | None, key: str) -> str | None:
    """The deliverable's URL under PUBLIC_BASE_URL (the key percent-encoded, its slashes kept); None without one."""
    return f"{base}/{quote(key, safe='/~')}" if base else None


@dataclass(frozen=True)
class Sized:
    """What srcset needs of a written rendition."""

    format: str
    width: int
    where: str  # its URL, or its key when there is no PUBLIC_BASE_URL


def srcsets(renditions: Iterable[Sized]) -> dict[str, str]:
    """Per format, ``"URL 1200w, URL 600w"``: ready for ``<img srcset>`` and ``<source srcset>``."""
    by_format: dict[str, list[Sized]] = {}
    for item in renditions:
        by_format.setdefault(item.format, []).append(item)
    return {
        fmt: ", ".join(f"{r.where} {r.width}w" for r in sorted(items, key=lambda r: -r.width))
        for fmt, items in by_format.items()
    }


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
