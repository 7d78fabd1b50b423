"""Exact-size crops: toward the focus, and around the source's box whenever a crop that keeps it whole exists."""

from __future__ import annotations

import json

import pytest

from reframe_pipeline.domain.cropping import Box, crop_for
from reframe_pipeline.domain.planning import plan
from reframe_pipeline.domain.resolutions import Size
from reframe_pipeline.domain.sidecar import InvalidSidecarError, parse_sidecar

WIDE = Size(1536, 512)  # 3:1, cropped to LinkedIn's 4:1 below
BANNER = Size(1584, 396)


def test_the_window_covers_the_final_size_in_the_canvas_shape() -> None:
    window = crop_for(WIDE, BANNER).window
    assert window.width == pytest.approx(1536) and window.height == pytest.approx(384)
    assert window.y == pytest.approx(64)  # centred by default


@pytest.mark.parametrize(("focus", "top"), [("top", 0.0), ("bottom", 128.0), ("center", 64.0), ("left", 64.0)])
def test_a_keyword_focus_moves_the_window_along_the_free_axis(focus: str, top: float) -> None:
    window = crop_for(WIDE, BANNER, focus).window
    assert (window.x, window.y) == (pytest.approx(0), pytest.approx(top))


def test_a_point_focus_is_taken_in_the_source_box_and_clamped_to_the_canvas() -> None:
    source = Box(512, 0, 512, 512)  # the photo in the middle third
    crop = crop_for(Size(1536, 512), Size(300, 512), (0.0, 0.5), source)  # a tall crop: x is free
    assert crop.source_cropped  # 300 columns cannot hold the 512-wide photo: the focus decides
    assert crop.window.x == pytest.approx(512 - 150)  # centred on the photo's left edge
    assert crop_for(Size(1536, 512), Size(300, 512), (1.0, 0.5)).window.x == pytest.approx(1536 - 300)


def test_a_crop_never_cuts_the_source_when_one_that_keeps_it_exists() -> None:
    source = Box(0, 100, 1536, 300)  # the photo spans y 100..400 of the 512 rows
    crop = crop_for(WIDE, BANNER, "top", source)  # top asks for y 0..384, which would cut rows 384..400
    assert crop.window.y == pytest.approx(16) and not crop.source_cropped
    assert crop_for(WIDE, BANNER, "bottom", source).window.y == pytest.approx(100)


def test_when_no_crop_keeps_the_source_whole_it_says_so() -> None:
    source = Box(0, 0, 1536, 450)  # taller than the 384 rows any 4:1 crop keeps
    crop = crop_for(WIDE, BANNER, "center", source)
    assert crop.source_cropped
    assert crop.window.y == pytest.approx(64)  # then the focus decides alone


def test_focus_is_a_rendition_field_and_absent_when_centred() -> None:
    def planned(target: dict[str, object]) -> tuple[str, str]:
        document = {"version": 1, "targets": [target], "seed": 4242}
        sidecar = parse_sidecar(json.dumps(document).encode(), max_bytes=65536, max_targets=20)
        (variant,) = plan(sidecar, provider="segmind", default_speed="DEFAULT", style_prefix="styles/")
        return variant.param_hash, variant.generation_hash

    plain = planned({"size": "1200x628", "name": "og"})
    assert plain[0] == "dec5f7da6b82769e40b0fe11d29757fc"  # as before focus existed: nothing is remade
    assert planned({"size": "1200x628", "name": "og", "focus": "center"}) == plain
    top = planned({"size": "1200x628", "name": "og", "focus": "top"})
    point = planned({"size": "1200x628", "name": "og", "focus": {"x": 0.3, "y": 0.2}})
    assert len({plain[0], top[0], point[0]}) == 3  # a new rendition each
    assert plain[1] == top[1] == point[1]  # of the same generation: free to change


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ({"resolution": "1536x512", "focus": "top"}, "'focus' applies to 'size' and 'preset' targets"),
        ({"size": "1200x628", "focus": "middle"}, "focus"),
        ({"size": "1200x628", "focus": {"x": 1.5, "y": 0}}, "less than or equal to 1"),
    ],
)
def test_a_focus_that_cannot_apply_is_refused(target: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidSidecarError, match=message):
        parse_sidecar(json.dumps({"version": 1, "targets": [target]}).encode(), max_bytes=65536, max_targets=20)
