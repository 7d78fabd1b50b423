"""The demo's contact sheet frames the variants flagged for review."""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from reframe_cli.contact_sheet import FLAGGED, Tile, contact_sheet


def test_a_flagged_variant_is_framed_and_a_plain_one_is_not(tmp_path: Path) -> None:
    picture = tmp_path / "v.png"
    Image.new("RGB", (40, 20), (0, 90, 200)).save(picture)
    sheet = contact_sheet([[Tile(picture, ("plain",)), Tile(picture, ("flagged",), flagged=True)]], row_height=20)
    colours = {colour for _, colour in sheet.getcolors(sheet.width * sheet.height) or []}
    assert FLAGGED in colours
    plain_only = contact_sheet([[Tile(picture, ("plain",))]], row_height=20)
    assert FLAGGED not in {colour for _, colour in plain_only.getcolors(plain_only.width * plain_only.height) or []}
