from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image, ImageChops, ImageStat

from reframe_pipeline.domain.local_engine import extend_canvas, fitted_box, pad_to_square
from reframe_pipeline.domain.resolutions import RESOLUTIONS, Size

from .images import opened, saved

pytestmark = pytest.mark.usefixtures("bounded_memory")

IMAGES = Path(__file__).resolve().parents[2] / "examples" / "images"


@pytest.fixture(scope="module")
def coffee() -> Image.Image:
    with Image.open(IMAGES / "coffee.png") as image:
        return image.convert("RGB")


def interior_difference(result: Image.Image, source: Image.Image, size: Size) -> float:
    """Mean absolute difference between the result's fitted box (minus its feathered rim) and the source."""
    left, top, width, height = fitted_box(Size(*source.size), size)
    expected = source.convert("RGB").resize((width, height), Image.Resampling.LANCZOS)
    rim = 30  # wider than the largest feather
    inner = (rim, rim, width - rim, height - rim)
    got = result.crop((left, top, left + width, top + height)).crop(inner)
    diff = ImageChops.difference(got, expected.crop(inner))
    return max(ImageStat.Stat(diff).mean)


@pytest.mark.parametrize("size", RESOLUTIONS, ids=str)
def test_exact_size_and_source_kept(coffee: Image.Image, size: Size) -> None:
    result = extend_canvas(coffee, size)
    assert result.mode == "RGB"
    assert result.size == tuple(size)
    assert interior_difference(result, coffee, size) < 1.0


@pytest.mark.parametrize("size", [Size(1, 1), Size(17, 3), Size(3, 999), Size(1001, 1001), Size(600, 400)])
def test_odd_sizes(coffee: Image.Image, size: Size) -> None:
    assert extend_canvas(coffee, size).size == tuple(size)


def test_same_aspect_is_a_plain_resize(coffee: Image.Image) -> None:
    result = extend_canvas(coffee, Size(900, 600))
    expected = coffee.resize((900, 600), Image.Resampling.LANCZOS)
    assert result.tobytes() == expected.tobytes()


def test_margins_are_filled_not_flat(coffee: Image.Image) -> None:
    result = extend_canvas(coffee, Size(1536, 640))
    left, _, _, _ = fitted_box(Size(*coffee.size), Size(1536, 640))
    margin = result.crop((0, 0, left, 640))
    assert max(ImageStat.Stat(margin).stddev) > 2  # a blurred continuation, not a solid colour
    assert ImageStat.Stat(margin).extrema[0][1] > 20  # and not black


def test_no_hard_seam(coffee: Image.Image) -> None:
    result = extend_canvas(coffee, Size(1536, 640))
    left, _, _, _ = fitted_box(Size(*coffee.size), Size(1536, 640))
    pairs = result.convert("L").crop((left - 1, 0, left + 1, 640)).tobytes()  # (outside, inside) per row
    across_seam = [abs(pairs[i] - pairs[i + 1]) for i in range(0, len(pairs), 2)]
    assert sum(across_seam) / len(across_seam) < 12


def test_deterministic(coffee: Image.Image) -> None:
    first = extend_canvas(coffee, Size(1344, 768)).tobytes()
    assert extend_canvas(coffee.copy(), Size(1344, 768)).tobytes() == first


@pytest.mark.parametrize("mode", ["RGBA", "P", "L", "CMYK", "LA", "I;16"])
def test_modes(coffee: Image.Image, mode: str) -> None:
    source = coffee.convert(mode) if mode != "I;16" else coffee.convert("L").convert("I;16")
    result = extend_canvas(source, Size(1024, 768))
    assert result.mode == "RGB"
    assert result.size == (1024, 768)


def test_transparent_source_is_flattened_on_white() -> None:
    source = Image.new("RGBA", (40, 40), (0, 0, 0, 0))
    result = extend_canvas(source, Size(80, 40))
    assert result.getpixel((40, 20)) == (255, 255, 255)


def test_rgba_source_content_kept(coffee: Image.Image) -> None:
    size = Size(1024, 1024)
    result = extend_canvas(coffee.convert("RGBA"), size)
    assert interior_difference(result, coffee, size) < 1.0


@pytest.mark.parametrize("source_size", [(1, 1), (2, 7), (9, 1)])
def test_tiny_sources(source_size: tuple[int, int]) -> None:
    source = Image.new("RGB", source_size, (200, 40, 10))
    result = extend_canvas(source, Size(1536, 512))
    assert result.size == (1536, 512)
    assert result.getpixel((768, 256)) == (200, 40, 10)


def test_pad_to_square(coffee: Image.Image) -> None:
    result = pad_to_square(coffee)
    assert result.size == (600, 600)
    assert interior_difference(result, coffee, Size(600, 600)) < 1.0
    portrait = pad_to_square(coffee.transpose(Image.Transpose.ROTATE_90))
    assert portrait.size == (600, 600)


def test_fitted_box_centres() -> None:
    assert fitted_box(Size(600, 400), Size(1536, 640)) == (288, 0, 960, 640)
    assert fitted_box(Size(100, 100), Size(512, 1536)) == (0, 512, 512, 512)


# --- the source placed unchanged, and only its edges that border a margin feathered ------------------------


def stripes(size: tuple[int, int], vertical: bool = True) -> Image.Image:
    """1-pixel black and white stripes: blurred, the margins are an even grey the edges can be told from."""
    width, height = size
    image = Image.new("L", size)
    image.putdata([255 * ((x if vertical else y) % 2) for y in range(height) for x in range(width)])
    return image.convert("RGB")


def fade(result: Image.Image, source: Image.Image, at: tuple[int, int], inside: tuple[int, int]) -> float:
    """How much of the source shows at a pixel of the result: 1 where it is pasted as it is, 0 where only the
    margin does; the margin's own colour is read at the pixel ``inside`` just across the edge."""
    margin = result.getpixel(inside)[0]
    return (result.getpixel(at)[0] - margin) / (source.getpixel((at[0] % 100, at[1] % 100))[0] - margin)


def test_a_source_of_the_box_size_is_pasted_unchanged_between_its_feathered_edges() -> None:
    source = stripes((100, 100))
    result = extend_canvas(source, Size(300, 100))
    assert fitted_box(Size(100, 100), Size(300, 100)) == (100, 0, 100, 100)
    feather = 4  # 4 % of the short side
    inner = result.crop((100 + feather, 0, 200 - feather, 100))
    assert inner.tobytes() == source.crop((feather, 0, 100 - feather, 100)).tobytes()


def test_the_edges_fade_linearly_into_the_margins() -> None:
    source = stripes((100, 100))
    result = extend_canvas(source, Size(300, 100))
    for k in range(5):  # from the outermost column in: 1/5, 2/5, ... of the source, then all of it
        assert fade(result, source, (100 + k, 50), (99, 50)) == pytest.approx((k + 1) / 5, abs=0.03)
        assert fade(result, source, (199 - k, 50), (200, 50)) == pytest.approx((k + 1) / 5, abs=0.03)
    # the sides that touch the canvas edge are not faded
    assert result.crop((104, 0, 196, 1)).tobytes() == source.crop((4, 0, 96, 1)).tobytes()
    assert result.crop((104, 99, 196, 100)).tobytes() == source.crop((4, 99, 96, 100)).tobytes()


def test_the_top_and_bottom_edges_fade_into_margins_above_and_below() -> None:
    source = stripes((100, 100), vertical=False)
    result = extend_canvas(source, Size(100, 300))
    for k in range(5):
        assert fade(result, source, (50, 100 + k), (50, 99)) == pytest.approx((k + 1) / 5, abs=0.03)
        assert fade(result, source, (50, 199 - k), (50, 200)) == pytest.approx((k + 1) / 5, abs=0.03)
    assert result.crop((0, 104, 1, 196)).tobytes() == source.crop((0, 4, 1, 96)).tobytes()
    assert result.crop((99, 104, 100, 196)).tobytes() == source.crop((99, 4, 100, 96)).tobytes()


def test_only_the_side_with_a_margin_fades() -> None:
    source = stripes((100, 100))
    result = extend_canvas(source, Size(101, 100))  # one column of margin, on the right
    assert fitted_box(Size(100, 100), Size(101, 100)) == (0, 0, 100, 100)
    assert result.crop((0, 0, 96, 100)).tobytes() == source.crop((0, 0, 96, 100)).tobytes()
    assert result.getpixel((99, 50)) != source.getpixel((99, 50))
    result = extend_canvas(source, Size(102, 100))  # one column on each side
    assert result.getpixel((1, 50)) != source.getpixel((0, 50))
    assert result.getpixel((100, 50)) != source.getpixel((99, 50))


def test_only_the_top_or_bottom_with_a_margin_fades() -> None:
    source = stripes((100, 100), vertical=False)
    result = extend_canvas(source, Size(100, 101))  # one row of margin, at the bottom
    assert result.crop((0, 0, 100, 96)).tobytes() == source.crop((0, 0, 100, 96)).tobytes()
    assert result.getpixel((50, 99)) != source.getpixel((50, 99))
    result = extend_canvas(source, Size(100, 102))  # one row above and one below
    assert result.getpixel((50, 1)) != source.getpixel((50, 0))
    assert result.getpixel((50, 100)) != source.getpixel((50, 99))


def test_the_feather_is_a_few_percent_of_the_short_side_and_at_most_24_pixels() -> None:
    small, large = stripes((50, 50)), stripes((1000, 1000))
    result = extend_canvas(small, Size(150, 50))  # feather 2
    assert result.crop((52, 0, 98, 50)).tobytes() == small.crop((2, 0, 48, 50)).tobytes()
    assert result.getpixel((51, 25)) != small.getpixel((1, 25))
    result = extend_canvas(large, Size(1100, 1000))  # 4 % would be 40: 24
    assert result.crop((74, 0, 1026, 1000)).tobytes() == large.crop((24, 0, 976, 1000)).tobytes()
    assert result.getpixel((73, 500)) != large.getpixel((23, 500))


# --- the margins: the source mirrored outwards, blurred -------------------------------------------------------


@pytest.mark.parametrize(
    ("source_size", "size"),
    [
        ((100, 100), (400, 100)),
        ((100, 100), (100, 400)),
        ((7, 300), (1536, 640)),
        ((300, 5), (640, 1536)),
        ((40, 30), (1000, 30)),
        ((3, 3), (8, 64)),
        ((16, 16), (17, 16)),
        ((100, 100), (150, 100)),  # a source wider than half the canvas: one mirrored copy on each side
        ((100, 100), (100, 150)),
    ],
)
def test_a_flat_source_gives_a_flat_canvas(source_size: tuple[int, int], size: tuple[int, int]) -> None:
    """Mirrored copies of a flat source reach every edge of the canvas: no black or empty patch anywhere."""
    colour = (200, 120, 40)
    result = extend_canvas(Image.new("RGB", source_size, colour), Size(*size))
    assert result.size == size
    low, high = zip(*ImageStat.Stat(result).extrema, strict=True)
    assert all(abs(a - b) <= 2 for a, b in zip(low, colour, strict=True))
    assert all(abs(a - b) <= 2 for a, b in zip(high, colour, strict=True))


def halves(size: tuple[int, int], vertical: bool) -> Image.Image:
    """Blue in the first half (left, or top), yellow in the second."""
    image = Image.new("RGB", size, (0, 0, 255))
    second = (size[0] // 2, 0, *size) if vertical else (0, size[1] // 2, *size)
    image.paste((255, 255, 0), second)
    return image


def near(pixel: tuple[int, ...], colour: tuple[int, int, int]) -> bool:
    return all(abs(a - b) < 40 for a, b in zip(pixel, colour, strict=True))


BLUE, YELLOW = (0, 0, 255), (255, 255, 0)


def test_the_side_margins_mirror_the_nearest_edge() -> None:
    result = extend_canvas(halves((100, 100), vertical=True), Size(400, 100))  # box at 150..250
    # next to the box the margin continues its edge: blue on the left, yellow on the right; further out the
    # mirror shows the other half
    assert near(result.getpixel((125, 50)), BLUE)
    assert near(result.getpixel((275, 50)), YELLOW)
    assert near(result.getpixel((75, 50)), YELLOW)
    assert near(result.getpixel((325, 50)), BLUE)


def test_the_top_and_bottom_margins_mirror_the_nearest_edge() -> None:
    result = extend_canvas(halves((100, 100), vertical=False), Size(100, 400))
    assert near(result.getpixel((50, 125)), BLUE)
    assert near(result.getpixel((50, 275)), YELLOW)
    assert near(result.getpixel((50, 75)), YELLOW)
    assert near(result.getpixel((50, 325)), BLUE)


# --- every kind of pixels becomes RGB -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "clear"), [("RGBA", (0, 0, 0, 0)), ("LA", (0, 0)), ("PA", (0, 0)), ("RGBa", (0, 0, 0, 0))]
)
def test_transparent_pixels_of_every_alpha_mode_are_white(mode: str, clear: tuple[int, ...]) -> None:
    source = Image.new(mode, (20, 20), clear)
    if mode == "PA":
        source.putpalette([10, 10, 10] * 256)
    result = extend_canvas(source, Size(40, 20))
    assert result.getpixel((20, 10)) == (255, 255, 255)


def test_a_palette_with_a_transparent_index_is_white_where_transparent() -> None:
    source = Image.new("P", (20, 20), 0)
    source.putpalette([10, 10, 10, 200, 0, 0] + [0] * 762)
    source.paste(1, (10, 0, 20, 20))
    source.info["transparency"] = 0
    result = extend_canvas(source, Size(20, 20))
    assert result.getpixel((2, 10)) == (255, 255, 255)
    assert result.getpixel((17, 10)) == (200, 0, 0)


@pytest.mark.parametrize(("mode", "value"), [("I;16", 51200), ("I", 51200), ("F", 51200.0)])
@pytest.mark.parametrize("size", [Size(40, 20), Size(10, 10)], ids=["extended", "same aspect"])
def test_deep_greyscale_is_scaled_into_8_bits_not_clipped(mode: str, value: float, size: Size) -> None:
    result = extend_canvas(Image.new(mode, (20, 20), value), size)
    assert result.mode == "RGB"
    assert result.getpixel((size.width // 2, size.height // 2)) == (200, 200, 200)  # 51200 of 65536: 200 of 256


@pytest.mark.parametrize("mode", ["L", "CMYK", "P"])
def test_a_source_of_the_canvas_aspect_is_rgb_too(mode: str) -> None:
    result = extend_canvas(Image.new("RGB", (20, 10), (40, 80, 120)).convert(mode), Size(40, 20))
    assert result.mode == "RGB"
    assert result.size == (40, 20)


@pytest.mark.parametrize(("mode", "key", "colour"), [("L", 50, 200), ("RGB", (0, 255, 0), (200, 20, 20))])
def test_a_colour_keyed_source_is_white_where_keyed(mode: str, key: object, colour: object) -> None:
    source = Image.new(mode, (20, 20), key)
    source.paste(colour, (10, 0, 20, 20))
    source = opened(saved(source, "PNG", transparency=key))  # as the local provider reads it
    result = extend_canvas(source, Size(20, 20))
    assert result.getpixel((2, 10)) == (255, 255, 255)
    assert result.getpixel((17, 10)) == Image.new(mode, (1, 1), colour).convert("RGB").getpixel((0, 0))


# --- where the source lands ------------------------------------------------------------------------------------


@pytest.mark.parametrize("source", [Size(600, 400), Size(1, 1), Size(1, 1000), Size(1000, 1), Size(333, 777)])
@pytest.mark.parametrize("size", [Size(1536, 640), Size(640, 1536), Size(1024, 1024), Size(10, 10), Size(1, 7)])
def test_the_box_fits_inside_touches_two_sides_and_is_centred(source: Size, size: Size) -> None:
    left, top, width, height = fitted_box(source, size)
    assert 1 <= width <= size.width and 1 <= height <= size.height
    assert width == size.width or height == size.height
    assert (left, top) == ((size.width - width) // 2, (size.height - height) // 2)
    # the aspect kept: the other side is the source's, scaled, to the nearest pixel (never below one)
    if width == size.width:
        assert height == max(1, round(source.height * width / source.width)) or height == size.height
    else:
        assert width == max(1, round(source.width * height / source.height))


def test_a_very_thin_source_keeps_one_pixel() -> None:
    assert fitted_box(Size(1000, 1), Size(10, 10)) == (0, 4, 10, 1)
    assert fitted_box(Size(1, 1000), Size(10, 10)) == (4, 0, 1, 10)
    result = extend_canvas(Image.new("RGB", (1, 1000), (9, 99, 199)), Size(10, 10))
    assert result.getpixel((4, 5)) == (9, 99, 199)
