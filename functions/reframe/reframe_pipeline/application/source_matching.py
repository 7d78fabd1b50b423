"""The source check of a generation: where the source sits in the generated image and how well it was kept,
with the policy that says what a low score does (SOURCE_CHECK, SOURCE_MATCH_MIN)."""

from __future__ import annotations

from dataclasses import dataclass
from time import perf_counter
from typing import Literal

from reframe_pipeline.application.object_metadata import META_SOURCE_BOX, META_SOURCE_MATCH
from reframe_pipeline.application.source_image import SourceImage
from reframe_pipeline.domain.manifest import SourceBox
from reframe_pipeline.domain.source_check import check_encoded
from reframe_pipeline.observability import MetricUnit, measure, traced


@dataclass(frozen=True)
class SourceCheckPolicy:
    """SOURCE_CHECK and SOURCE_MATCH_MIN: look at each generation or not; below ``minimum``, flag the variant
    (``warn``) or generate it once more with a new seed and keep the better of the two (``retry``)."""

    mode: Literal["off", "warn", "retry"] = "warn"
    minimum: float = 0.85

    @property
    def on(self) -> bool:
        return self.mode != "off"


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
    with traced("source check"):
        found = check_encoded(source.thumbnail(), body)
    measure("SourceCheckTime", (perf_counter() - started) * 1000, MetricUnit.Milliseconds)
    b = found.box
    box = SourceBox(x=round(b.x), y=round(b.y), width=round(b.width), height=round(b.height))
    return SourceFound(round(found.score, 4), box)
