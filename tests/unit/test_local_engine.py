from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image, ImageChops, ImageStat

from reframe_pipeline.domain.local_engine import extend_canvas, fitted_box, pad_to_square
from reframe_pipeline.domain.resolutions import RESOLUTIONS, Size

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
