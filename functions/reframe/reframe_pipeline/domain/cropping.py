"""Where an exact-size crop of a reframed canvas falls: toward the target's ``focus``, and never into the
source's box when a crop that keeps it whole exists (a generated fill may be cropped, the photo may not)."""

from __future__ import annotations

from typing import NamedTuple

from reframe_pipeline.domain.resolutions import Size

FOCUS_KEYWORDS = ("center", "top", "bottom", "left", "right")
# A keyword, or a point (x, y) in 0..1 of the source (of the canvas when the source's box is unknown).
Focus = str | tuple[float, float]


class Box(NamedTuple):
    """A rectangle in pixels of an image: left, top, width, height."""

    x: float
    y: float
    width: float
    height: float


class Crop(NamedTuple):
    window: Box  # the part of the canvas scaled to the final size
    source_cropped: bool  # the source's box does not fit in the window: part of the photo is cut


def _axis(length: float, window: float, wanted_start: float, keep: tuple[float, float] | None) -> tuple[float, bool]:
    """The window's start on one axis: as near ``wanted_start`` as the canvas allows, moved the least that
    keeps the span ``keep`` inside it when it fits; with whether it does not fit."""
    start = min(max(wanted_start, 0.0), length - window)
    if keep is None:
        return start, False
    low, high = keep
    if high - low > window + 0.5:  # half a pixel: rounding, not a cut
        return start, True
    if low < start:
        start = low
    elif high > start + window:
        start = high - window
    return min(max(start, 0.0), length - window), False


def crop_for(canvas: Size, final: Size, focus: Focus = "center", source: Box | None = None) -> Crop:
    """The window of ``canvas`` that, scaled to cover ``final``, makes the exact-size variant."""
    scale = max(final.width / canvas.width, final.height / canvas.height)
    width, height = final.width / scale, final.height / scale
    if isinstance(focus, tuple):
        area = source or Box(0, 0, canvas.width, canvas.height)
        centre_x, centre_y = area.x + focus[0] * area.width, area.y + focus[1] * area.height
        wanted = (centre_x - width / 2, centre_y - height / 2)
    else:
        wanted = (
            {"left": 0.0, "right": canvas.width - width}.get(focus, (canvas.width - width) / 2),
            {"top": 0.0, "bottom": canvas.height - height}.get(focus, (canvas.height - height) / 2),
        )
    keep_x = (source.x, source.x + source.width) if source else None
    keep_y = (source.y, source.y + source.height) if source else None
    left, cut_x = _axis(canvas.width, width, wanted[0], keep_x)
    top, cut_y = _axis(canvas.height, height, wanted[1], keep_y)
    return Crop(Box(left, top, width, height), cut_x or cut_y)
