"""The source check of a generation: where the source sits in the generated image and how well it was kept,
with the policy that says what a low score does (SOURCE_CHECK, SOURCE_MATCH_MIN)."""

from __future__ import annotations

import io
from dataclasses import dataclass
from time import perf_counter
from typing import Literal

from PIL import Image

from reframe_pipeline.application.object_metadata import META_SOURCE_BOX, META_SOURCE_MATCH
from reframe_pipeline.application.source_image import SourceImage
from reframe_pipeline.domain.manifest import SourceBox
from reframe_pipeline.domain.source_check import check
from reframe_pipeline.observability import MetricUnit, measure, traced


@dataclass(frozen=True)
class SourceCheckPolicy:
    """SOURCE_CHECK and SOURCE_MATCH_MIN: look at each generation or not; below ``minimum``, flag the variant
    (``warn``) or generate it once more with a new seed and keep the better of the two (``retry``)."""

    mode: Literal["off", "warn", "retry"] = "warn"
    minimum: float = 0.85


@dataclass(frozen=True)
class SourceFound:
    """A generation's source check: its score and the source's box in the generation's pixels."""

    score: float
    box: SourceBox

    def metadata(self) -> dict[str, str]:
        b = self.box
        return {META_SOURCE_MATCH: f"{self.score:.4f}", META_SOURCE_BOX: f"{b.x},{b.y},{b.width},{b.height}"}

    @classmethod
    def from_metadata(cls, metadata: dict[str, str]) -> SourceFound | None:
        try:
            x, y, w, h = (int(part) for part in metadata[META_SOURCE_BOX].split(","))
            return cls(float(metadata[META_SOURCE_MATCH]), SourceBox(x=x, y=y, width=w, height=h))
        except (KeyError, ValueError):
            return None


def look_for_source(source: SourceImage, body: bytes) -> SourceFound:
    """Locate the source in a generation's bytes and score it (the source's thumbnail is made once per run)."""
    started = perf_counter()
    with traced("source check"), Image.open(io.BytesIO(body)) as image:
        image.draft("L", (image.width // 4, image.height // 4))  # a JPEG decodes at a quarter: plenty here
        scale_x, scale_y = 1.0, 1.0
        full = image.size
        image.load()
        if image.size != full:  # draft decoded it smaller: boxes are reported in the generation's own pixels
            scale_x, scale_y = full[0] / image.width, full[1] / image.height
        found = check(source.thumbnail(), image)
    measure("SourceCheckTime", (perf_counter() - started) * 1000, MetricUnit.Milliseconds)
    b = found.box
    box = SourceBox(
        x=round(b.x * scale_x), y=round(b.y * scale_y), width=round(b.width * scale_x), height=round(b.height * scale_y)
    )
    return SourceFound(round(found.score, 4), box)
