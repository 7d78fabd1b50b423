"""Finding the source inside a reframed result and scoring how well it survived (domain/source_check.py)."""

from __future__ import annotations

import io
import random

import pytest
from PIL import Image, ImageDraw, ImageFilter

from reframe_pipeline.domain import source_check
from reframe_pipeline.domain.cropping import crop_for
from reframe_pipeline.domain.local_engine import extend_canvas, fitted_box
from reframe_pipeline.domain.resolutions import Size
from reframe_pipeline.domain.source_check import Box, check, check_encoded, ssim, thumbnail

from .images import opened, saved


def scene(size: tuple[int, int], seed: int = 7) -> Image.Image:
    """A photo-like source: a gradient with shapes of every size, so it has structure at every scale."""
    rng = random.Random(seed)
    width, height = size
    image = Image.linear_gradient("L").resize(size).convert("RGB")
    draw = ImageDraw.Draw(image)
    for _ in range(40):
        x, y = rng.randrange(width), rng.randrange(height)
        r = rng.randrange(4, max(5, width // 6))
        colour = (rng.randrange(256), rng.randrange(256), rng.randrange(256))
        (draw.ellipse if rng.random() < 0.5 else draw.rectangle)((x - r, y - r, x + r, y + r), fill=colour)
    return image


def background(size: tuple[int, int], source: Image.Image) -> Image.Image:
    """What a model might paint around the source: something of the same colours, without its structure."""
    return source.resize(size).transpose(Image.Transpose.FLIP_LEFT_RIGHT).filter(ImageFilter.GaussianBlur(25))


def placed(source: Image.Image, size: tuple[int, int], box: tuple[int, int, int, int]) -> Image.Image:
    canvas = background(size, source)
    x, y, w, h = box
    canvas.paste(source.resize((w, h), Image.Resampling.LANCZOS), (x, y))
    return canvas


def close(found: Box, expected: tuple[int, int, int, int], tolerance: int) -> bool:
    return all(
        abs(a - b) <= tolerance for a, b in zip((found.x, found.y, found.width, found.height), expected, strict=True)
    )


@pytest.mark.parametrize("size", [(1536, 640), (640, 1536), (1024, 1024)])
def test_the_local_engines_output_is_found_where_it_put_the_source_and_scores_about_one(size):
    source = scene((600, 400))
    result = extend_canvas(source, Size(*size))
    match = check(thumbnail(source), result)
    expected = fitted_box(Size(600, 400), Size(*size))
    assert close(match.box, expected, tolerance=max(size) // 100), (match.box, expected)
    assert match.score > 0.95


@pytest.mark.parametrize(
    ("size", "box"),
    [
        ((1536, 640), (120, 300, 420, 280)),  # bottom left, well under the largest fit
        ((1536, 640), (900, 40, 600, 400)),  # right, nearly the full height
        ((640, 1536), (100, 1100, 360, 240)),  # low in a portrait canvas
        ((1024, 1024), (512, 64, 300, 200)),  # a small source in the top right corner
    ],
)
def test_a_source_placed_off_centre_or_scaled_is_located_within_a_few_pixels(size, box):
    source = scene((600, 400), seed=box[0])
    match = check(thumbnail(source), placed(source, size, box))
    assert close(match.box, box, tolerance=max(4, max(size) // 150)), (match.box, box)
    assert match.score > 0.95


def test_a_repainted_centre_is_scored_well_below_an_intact_source():
    source = scene((600, 400))
    result = extend_canvas(source, Size(1536, 640))
    x, y, w, h = fitted_box(Size(600, 400), Size(1536, 640))
    intact = check(thumbnail(source), result).score
    repainted = result.copy()
    ImageDraw.Draw(repainted).rectangle((x + w * 0.2, y + h * 0.2, x + w * 0.8, y + h * 0.8), fill=(128, 128, 128))
    altered = check(thumbnail(source), repainted)
    assert altered.score < 0.8 < 0.95 < intact
    assert close(altered.box, (x, y, w, h), tolerance=16)  # the margins still place it


def test_a_different_picture_scores_low():
    source = scene((600, 400), seed=1)
    other = extend_canvas(scene((600, 400), seed=2), Size(1024, 1024))
    assert check(thumbnail(source), other).score < 0.5


def test_flat_images_and_results_smaller_than_the_search_do_not_break_it():
    grey = Image.new("RGB", (300, 200), (90, 90, 90))
    match = check(thumbnail(grey), Image.new("RGB", (512, 512), (90, 90, 90)))
    assert 0 <= match.score <= 1
    tiny = check(thumbnail(scene((300, 200))), scene((12, 9)))
    assert 0 <= tiny.score <= 1
    assert tiny.box.width <= 12 and tiny.box.height <= 9


def test_transparent_and_sixteen_bit_images_are_compared_in_grey():
    rgba = scene((300, 200)).convert("RGBA")
    assert check(thumbnail(rgba), rgba).score > 0.95
    wide = Image.linear_gradient("L").resize((256, 256)).convert("I;16")
    assert thumbnail(wide).mode == "L"


def test_the_thumbnail_is_small_whatever_the_source():
    big = scene((4000, 3000))
    small = thumbnail(big)
    assert max(small.size) == source_check.THUMBNAIL and small.mode == "L"
    assert thumbnail(scene((50, 40))).size == (50, 40)  # never enlarged


def test_ssim_is_one_for_equal_images_and_low_for_unrelated_ones():
    rng = random.Random(3)
    a = [[rng.randrange(256) for _ in range(16)] for _ in range(16)]
    b = [[rng.randrange(256) for _ in range(16)] for _ in range(16)]
    assert ssim(a, a) == pytest.approx(1.0)
    assert ssim(a, b) < 0.3


def generation(source: Image.Image, size: tuple[int, int]) -> Image.Image:
    """What the reframe makes: the source centred and scaled to fit, extended with content around it."""
    return extend_canvas(source, Size(*size))


@pytest.mark.parametrize("size", [(1536, 640), (1536, 512), (640, 1536)])
def test_jpeg_png_and_webp_of_one_generation_give_the_same_box_in_full_size_pixels(size):
    source = opened(saved(scene((900, 600), seed=11), "JPEG", quality=92))
    picture = generation(source, size)
    small = thumbnail(source)
    boxes = {fmt: check_encoded(small, saved(picture, fmt, quality=90)).box for fmt in ("JPEG", "PNG", "WEBP")}
    expected = fitted_box(Size(900, 600), Size(*size))
    for fmt, box in boxes.items():
        assert close(box, expected, tolerance=2), (fmt, box, expected)


def test_a_reduced_decode_is_never_mistaken_for_the_full_size():
    # A JPEG decodes at a quarter (draft): the box must still be in the generation's own pixels.
    source = scene((600, 400))
    body = saved(generation(source, (1536, 640)), "JPEG", quality=90)
    match = check_encoded(thumbnail(source), body)
    assert match.box.width > 900 and match.box.height == 640


def test_a_3_2_photo_made_into_a_linkedin_banner_from_a_1536x512_jpeg_is_flagged_as_cropped():
    photo = scene((1200, 800), seed=5)
    body = saved(generation(photo, (1536, 512)), "JPEG", quality=90)
    match = check_encoded(thumbnail(photo), body)
    assert close(match.box, (384, 0, 768, 512), tolerance=2), match.box
    # 4:1 out of 3:1 keeps 384 of the 512 rows: the photo's top or bottom is lost.
    assert crop_for(Size(1536, 512), Size(1584, 396), "center", match.box).source_cropped
    # The same photo in a 3:1 banner keeps it whole.
    assert not crop_for(Size(1536, 512), Size(1500, 500), "center", match.box).source_cropped


def test_an_intact_result_is_accepted_at_the_expected_box_and_a_moved_source_is_searched_for():
    source = scene((600, 400), seed=21)
    intact = check(thumbnail(source), generation(source, (1536, 640)))
    assert not intact.searched and intact.score >= source_check.EXPECTED_ACCEPT
    moved = check(thumbnail(source), placed(source, (1536, 640), (120, 300, 420, 280)))
    assert moved.searched and close(moved.box, (120, 300, 420, 280), tolerance=10)


def test_a_repainted_source_where_expected_keeps_the_expected_box_and_a_low_score():
    source = scene((600, 400), seed=8)
    picture = generation(source, (1536, 640))
    x, y, w, h = fitted_box(Size(600, 400), Size(1536, 640))
    region = (x + w // 5, y + h // 5, x + 4 * w // 5, y + 4 * h // 5)
    picture.paste(
        picture.crop(region).transpose(Image.Transpose.ROTATE_180).filter(ImageFilter.GaussianBlur(2)), region[:2]
    )
    match = check(thumbnail(source), picture)
    assert match.score < 0.85
    assert close(match.box, (x, y, w, h), tolerance=2)


def test_the_thumbnail_records_the_sources_size_before_a_reduced_decode():
    body = saved(scene((1600, 1000)), "JPEG", quality=90)
    with Image.open(io.BytesIO(body)) as image:
        small = thumbnail(image)
    assert max(small.size) == source_check.THUMBNAIL
    assert small.info["source_size"] == (1600, 1000)
