"""A contact sheet: one row per source, the source then its variants, all scaled to one height and
labelled underneath; variants flagged for review framed in orange."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont, ImageOps

ROW_HEIGHT = 200
_FONT_SIZE = 14
_LINE_HEIGHT = 18
_PAD = 12
_BACKGROUND = (245, 245, 245)
_MISSING = (210, 210, 210)
_TEXT = (30, 30, 30)
_BORDER = (160, 160, 160)
FLAGGED = (230, 120, 0)  # the frame of a variant to look at before publishing (warnings, a fallback)
_FLAG_WIDTH = 4


@dataclass(frozen=True)
class Tile:
    """An image file (None: nothing to show, e.g. a failed variant), the lines written under it, and
    whether it is flagged for review (framed in orange)."""

    image: Path | None
    lines: tuple[str, ...]
    flagged: bool = False


def _thumbnail(tile: Tile, height: int) -> Image.Image:
    if tile.image is None:
        return Image.new("RGB", (height, height), _MISSING)
    with Image.open(tile.image) as source:
        upright = ImageOps.exif_transpose(source).convert("RGB")
    width = max(1, round(upright.width * height / upright.height))
    return upright.resize((width, height), Image.Resampling.LANCZOS)


def contact_sheet(rows: Sequence[Sequence[Tile]], *, row_height: int = ROW_HEIGHT) -> Image.Image:
    font = ImageFont.load_default(size=_FONT_SIZE)
    label_lines = max((len(tile.lines) for row in rows for tile in row), default=0)
    band = row_height + label_lines * _LINE_HEIGHT + _PAD
    thumbs = [[_thumbnail(tile, row_height) for tile in row] for row in rows]
    # A tile is as wide as its image or its longest label, whichever is wider.
    widths = [
        [
            max([thumb.width, *(int(font.getlength(line)) for line in tile.lines)])
            for thumb, tile in zip(row_thumbs, row, strict=True)
        ]
        for row_thumbs, row in zip(thumbs, rows, strict=True)
    ]
    sheet_width = max((sum(w) + _PAD * (len(w) + 1) for w in widths), default=_PAD * 2)
    sheet = Image.new("RGB", (sheet_width, _PAD + band * len(rows)), _BACKGROUND)
    draw = ImageDraw.Draw(sheet)
    for index, (row, row_thumbs, row_widths) in enumerate(zip(rows, thumbs, widths, strict=True)):
        top = _PAD + index * band
        left = _PAD
        for tile, thumb, width in zip(row, row_thumbs, row_widths, strict=True):
            sheet.paste(thumb, (left, top))
            frame = (FLAGGED, _FLAG_WIDTH) if tile.flagged else (_BORDER, 1)
            draw.rectangle(
                (left - frame[1], top - frame[1], left + thumb.width - 1 + frame[1], top + thumb.height - 1 + frame[1]),
                outline=frame[0],
                width=frame[1],
            )
            for number, line in enumerate(tile.lines):
                draw.text((left, top + row_height + 4 + number * _LINE_HEIGHT), line, fill=_TEXT, font=font)
            left += width + _PAD
    return sheet
