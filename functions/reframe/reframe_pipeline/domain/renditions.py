"""The deliverables of one variant (docs/outputs.md, "Formats and widths"): every listed format at every
width, all rendered from the variant's one generation, and the ``srcset`` of each format."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import quote

from reframe_pipeline.domain.resolutions import Size


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
