"""The catalogue of the 69 resolutions the reframe API accepts, and nearest-aspect mapping."""

from __future__ import annotations

import math
import re
from typing import NamedTuple

_CATALOGUE = """
512x1536 576x1408 576x1472 576x1536 640x1344 640x1408 640x1472 640x1536 704x1152 704x1216
704x1280 704x1344 704x1408 704x1472 736x1312 768x1088 768x1216 768x1280 768x1344 800x1280
832x960 832x1024 832x1088 832x1152 832x1216 832x1248 864x1152 896x960 896x1024 896x1088
896x1120 896x1152 960x832 960x896 960x1024 960x1088 1024x832 1024x896 1024x960 1024x1024
1088x768 1088x832 1088x896 1088x960 1120x896 1152x704 1152x832 1152x864 1152x896 1216x704
1216x768 1216x832 1248x832 1280x704 1280x768 1280x800 1312x736 1344x640 1344x704 1344x768
1408x576 1408x640 1408x704 1472x576 1472x640 1472x704 1536x512 1536x576 1536x640
"""

_DIMS = re.compile(r"^\s*(\d{1,5})\s*[xX]\s*(\d{1,5})\s*$")
_RATIO = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*:\s*(\d+(?:\.\d+)?)\s*$")


class Size(NamedTuple):
    width: int
    height: int

    def __str__(self) -> str:
        return f"{self.width}x{self.height}"

    @property
    def aspect(self) -> float:
        return self.width / self.height


RESOLUTIONS: tuple[Size, ...] = tuple(Size(int(w), int(h)) for w, h in (item.split("x") for item in _CATALOGUE.split()))
RESOLUTION_NAMES: frozenset[str] = frozenset(str(size) for size in RESOLUTIONS)


def parse_size(text: str) -> Size:
    """Parse ``"WxH"`` into a Size; raises ValueError with a readable reason."""
    match = _DIMS.match(text)
    if not match:
        raise ValueError(f"expected 'WIDTHxHEIGHT' (for example '1200x628'), got {text!r}")
    size = Size(int(match[1]), int(match[2]))
    if not (1 <= size.width <= 8192 and 1 <= size.height <= 8192):
        raise ValueError(f"each side must be between 1 and 8192 pixels, got {text!r}")
    return size


def parse_aspect(text: str) -> float:
    """Parse ``"W:H"`` into a ratio; raises ValueError with a readable reason."""
    match = _RATIO.match(text)
    if not match or float(match[2]) == 0 or float(match[1]) == 0:
        raise ValueError(f"expected 'W:H' with positive numbers (for example '9:16'), got {text!r}")
    return float(match[1]) / float(match[2])


def nearest_resolution(aspect: float) -> Size:
    """The allowed resolution nearest in aspect (compared on a log scale), ties to the larger area.

    Aspects beyond the catalogue's 1:3..3:1 map to the extreme, which is then cropped.
    """
    target = math.log(aspect)
    return min(
        RESOLUTIONS,
        key=lambda s: (round(abs(math.log(s.aspect) - target), 9), -(s.width * s.height)),
    )
