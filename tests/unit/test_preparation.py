"""Source preparation (domain/preparation.py): what the header tells, which sources need a prepared copy, the
limits refused with their reason, and the prepared copy itself: upright, RGB(A), within the pixel and byte
limits, square if asked, its colour profile kept. Small in-memory images only."""

from __future__ import annotations

import io
import re
import struct
import zlib
from dataclasses import replace

import pytest
from PIL import Image, ImageCms, ImageOps

from reframe_pipeline.domain.preparation import (
    HeaderIncompleteError,
    Limits,
    SourceFacts,
    UnsupportedImageError,
    check_input_size,
    prepare,
    probe,
    reasons_to_prepare,
    recipe,
)
from reframe_pipeline.domain.resolutions import Size

from .images import noise, opened, saved

pytestmark = pytest.mark.usefixtures("bounded_memory")

LIMITS = Limits(
    max_input_bytes=10_000_000, max_bytes=5_000_000, max_pixels=1_000_000, max_decode_pixels=50_000_000, square=False
)
SRGB = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
ORIENTATION = 0x0112


def exif_orientation(value: int) -> bytes:
    exif = Image.Exif()
    exif[ORIENTATION] = value
    return exif.tobytes()


def quadrants(size: tuple[int, int] = (30, 20)) -> Image.Image:
    """Four flat quadrants of distinct colours: any rotation or mirror shows."""
    width, height = size
    image = Image.new("RGB", size)
    image.paste((255, 0, 0), (0, 0, width // 2, height // 2))
    image.paste((0, 255, 0), (width // 2, 0, width, height // 2))
    image.paste((0, 0, 255), (0, height // 2, width // 2, height))
    image.paste((255, 255, 0), (width // 2, height // 2, width, height))
    return image


def chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_claiming(width: int, height: int) -> bytes:
    """A PNG whose header claims ``width`` x ``height`` pixels, with almost no pixel data behind it."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\x00")) + chunk(b"IEND", b"")


# --- check_input_size: refused before reading -----------------------------------------------------------------


def test_an_empty_object_is_refused() -> None:
    with pytest.raises(UnsupportedImageError) as caught:
        check_input_size(0, LIMITS)
    assert caught.value.message == "the object is empty (0 bytes)"
    assert caught.value.code == "unsupported_image"


def test_an_object_over_the_input_limit_is_refused_unread_naming_the_setting() -> None:
    limits = replace(LIMITS, max_input_bytes=5_000_000_000)
    check_input_size(5_000_000_000, limits)  # at the limit: read
    check_input_size(1, limits)
    with pytest.raises(UnsupportedImageError) as caught:
        check_input_size(5_000_000_001, limits)
    assert caught.value.message == (
        "the object is 5,000,000,001 bytes, over the limit of 5,000,000,000 (setting MAX_INPUT_BYTES):"
        " refused without reading it"
    )


# --- probe: facts from the header ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pillow_format", "key"),
    [
        ("JPEG", "jpeg"),
        ("PNG", "png"),
        ("WEBP", "webp"),
        ("GIF", "gif"),
        ("BMP", "bmp"),
        ("TIFF", "tiff"),
        ("AVIF", "avif"),
    ],
)
def test_probe_tells_format_and_size(pillow_format: str, key: str) -> None:
    body = saved(Image.new("RGB", (37, 23), (5, 6, 7)), pillow_format)
    assert probe(body, complete=True) == SourceFacts(key, Size(37, 23), 1)


@pytest.mark.parametrize("size", [(1, 1), (1, 9), (9, 1)])
def test_probe_takes_images_one_pixel_wide(size: tuple[int, int]) -> None:
    assert probe(saved(Image.new("RGB", size), "PNG"), complete=True) == SourceFacts("png", Size(*size), 1)


def test_probe_reads_heic() -> None:
    from reframe_pipeline.domain.preparation import _heif_support

    _heif_support()
    body = saved(Image.new("RGB", (40, 24), (5, 6, 7)), "HEIF")
    assert probe(body, complete=True) == SourceFacts("heic", Size(40, 24), 1)


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "TIFF"])
def test_probe_tells_the_exif_orientation(fmt: str) -> None:
    body = saved(Image.new("RGB", (30, 20)), fmt, exif=exif_orientation(3))
    assert probe(body, complete=True) == SourceFacts(fmt.lower(), Size(30, 20), 3)


def test_an_orientation_of_zero_counts_as_upright() -> None:
    body = saved(Image.new("RGB", (30, 20)), "JPEG", exif=exif_orientation(0))
    assert probe(body, complete=True).orientation == 1


def test_the_first_bytes_of_a_large_png_tell_its_size_and_orientation_without_its_pixels() -> None:
    body = saved(noise((200, 150)), "PNG", exif=exif_orientation(8))
    assert len(body) > 50_000
    assert probe(body[:2000], complete=False) == SourceFacts("png", Size(200, 150), 8)


def test_the_first_bytes_of_a_large_png_without_exif_tell_it_is_upright() -> None:
    body = saved(noise((200, 150)), "PNG")
    assert probe(body[:2000], complete=False) == SourceFacts("png", Size(200, 150), 1)


def test_an_unknown_content_is_refused_whatever_its_name() -> None:
    with pytest.raises(UnsupportedImageError) as caught:
        probe(b"%PDF-1.7 a document, not an image", complete=True)
    assert caught.value.message == (
        "not a supported image: JPEG, PNG, WebP, HEIC/HEIF, AVIF, TIFF, BMP or GIF, judged by content"
    )


def test_a_whole_object_whose_header_does_not_parse_is_refused() -> None:
    with pytest.raises(UnsupportedImageError) as caught:
        probe(b"\x89PNG\r\n\x1a\n" + b"this is no PNG chunk at all" * 3, complete=True)
    assert caught.value.message == "the PNG header does not parse: not a readable file of that format"


def test_a_header_cut_short_asks_for_more_bytes_until_the_last_read() -> None:
    big_exif = exif_orientation(6) + bytes(3000)  # a header longer than the first read
    body = saved(Image.new("RGB", (30, 20)), "JPEG", exif=big_exif)
    with pytest.raises(HeaderIncompleteError):
        probe(body[:2000], complete=False)
    with pytest.raises(UnsupportedImageError) as caught:
        probe(body[:2000], complete=False, final=True)
    assert caught.value.message == (
        "the JPEG header does not parse in the first 2,000 bytes: refused without reading more"
    )
    assert probe(body, complete=True).orientation == 6


# --- reasons_to_prepare: what a prepared copy is made for ------------------------------------------------------


def facts(width: int = 800, height: int = 600, fmt: str = "jpeg", orientation: int = 1) -> SourceFacts:
    return SourceFacts(fmt, Size(width, height), orientation)


def test_a_source_the_provider_takes_as_it_is_needs_nothing() -> None:
    for fmt in ("jpeg", "png", "webp"):
        assert reasons_to_prepare(facts(fmt=fmt), 1000, LIMITS) == []
    assert reasons_to_prepare(facts(orientation=0), 1000, LIMITS) == []


@pytest.mark.parametrize("orientation", range(2, 9))
def test_a_rotated_or_mirrored_source_is_prepared(orientation: int) -> None:
    assert reasons_to_prepare(facts(orientation=orientation), 1000, LIMITS) == ["exif-orientation"]


@pytest.mark.parametrize("fmt", ["gif", "bmp", "tiff", "heic", "avif"])
def test_other_formats_are_converted(fmt: str) -> None:
    assert reasons_to_prepare(facts(fmt=fmt), 1000, LIMITS) == [f"format-{fmt}"]


def test_byte_and_pixel_limits_are_inclusive() -> None:
    assert reasons_to_prepare(facts(), LIMITS.max_bytes, LIMITS) == []
    assert reasons_to_prepare(facts(), LIMITS.max_bytes + 1, LIMITS) == ["too-many-bytes"]
    assert reasons_to_prepare(facts(1000, 1000), 1000, LIMITS) == []  # exactly max_pixels
    assert reasons_to_prepare(facts(1001, 1000), 1000, LIMITS) == ["too-many-pixels"]
    assert reasons_to_prepare(facts(2000, 1), 1000, LIMITS) == []  # long but few pixels


def test_square_only_providers_get_square_sources() -> None:
    square = replace(LIMITS, square=True)
    assert reasons_to_prepare(facts(600, 600), 1000, square) == []
    assert reasons_to_prepare(facts(600, 601), 1000, square) == ["not-square"]
    assert reasons_to_prepare(facts(600, 601), 1000, LIMITS) == []


def test_every_reason_is_told() -> None:
    square = replace(LIMITS, square=True)
    assert reasons_to_prepare(facts(2000, 1000, "tiff", 3), LIMITS.max_bytes + 1, square) == [
        "exif-orientation",
        "format-tiff",
        "too-many-bytes",
        "too-many-pixels",
        "not-square",
    ]


def test_a_source_too_large_to_decode_is_refused_before_decoding() -> None:
    with pytest.raises(UnsupportedImageError) as caught:
        reasons_to_prepare(facts(20_000, 10_000, "tiff"), 1000, LIMITS)
    assert caught.value.message == (
        "the image claims 20000x10000 (200 megapixels), over the limit of 50 (MAX_DECODE_PIXELS, sized to the"
        " function's memory): refused without decoding (decompression bomb guard)"
    )
    # at the limit it is decoded (and downscaled)
    assert reasons_to_prepare(facts(10_000, 5_000, "tiff"), 1000, LIMITS) == ["format-tiff", "too-many-pixels"]


def test_a_source_sent_as_it_is_is_never_decoded_so_the_decode_limit_does_not_apply() -> None:
    limits = replace(LIMITS, max_pixels=100_000_000)
    assert reasons_to_prepare(facts(8_000, 8_000), 1000, limits) == []


def test_the_recipe_names_the_reasons_and_the_limits() -> None:
    assert recipe(["format-gif"], LIMITS) == recipe(["format-gif"], replace(LIMITS))
    assert recipe(["format-gif"], LIMITS) != recipe(["format-tiff"], LIMITS)
    assert recipe(["format-gif"], LIMITS) != recipe(["format-gif"], replace(LIMITS, max_pixels=999_999))
    assert re.fullmatch(r"[0-9a-f]{16}", recipe([], LIMITS))


# --- prepare: the prepared copy ----------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["PNG", "TIFF"])
@pytest.mark.parametrize("orientation", range(1, 9))
def test_the_prepared_copy_is_upright(orientation: int, fmt: str) -> None:
    upright = quadrants()
    body = saved(upright, fmt, exif=exif_orientation(orientation))
    # the reference: the image as Pillow shows it, turned by its own reading of the orientation
    expected = ImageOps.exif_transpose(opened(body))
    assert expected.size == ((30, 20) if orientation < 5 else (20, 30))

    prepared = opened(prepare(body, LIMITS))

    assert prepared.format == "PNG"
    assert prepared.size == expected.size
    assert prepared.tobytes() == expected.tobytes()


def test_a_photo_turned_by_the_camera_is_turned_back() -> None:
    upright = quadrants((30, 20))
    # orientation 6: the camera was held turned, the stored pixels are the scene turned a quarter
    # counter-clockwise, and the viewer turns them a quarter clockwise
    stored = upright.transpose(Image.Transpose.ROTATE_90)
    for fmt in ("PNG", "JPEG", "TIFF"):
        prepared = opened(prepare(saved(stored, fmt, exif=exif_orientation(6), quality=100), LIMITS))
        assert prepared.size == (30, 20)
        assert prepared.getpixel((2, 2))[0] > 200 > prepared.getpixel((2, 2))[1]  # red at the top left
        assert prepared.getpixel((27, 17))[:2] > (200, 200)  # yellow at the bottom right


def test_a_format_the_provider_does_not_take_becomes_a_png_of_the_same_pixels() -> None:
    source = noise((24, 18))
    prepared = opened(prepare(saved(source, "BMP"), LIMITS))
    assert (prepared.format, prepared.mode, prepared.size) == ("PNG", "RGB", (24, 18))
    assert prepared.tobytes() == source.tobytes()


def test_greyscale_becomes_rgb() -> None:
    prepared = opened(prepare(saved(Image.new("L", (8, 8), 77), "TIFF"), LIMITS))
    assert prepared.mode == "RGB"
    assert prepared.getpixel((3, 3)) == (77, 77, 77)
    prepared = opened(prepare(saved(Image.new("L", (80, 40), 77), "TIFF"), replace(LIMITS, max_pixels=800)))
    assert (prepared.mode, prepared.size) == ("RGB", (40, 20))
    assert prepared.getpixel((20, 10)) == (77, 77, 77)


def test_alpha_is_kept_exactly_when_nothing_is_downscaled() -> None:
    source = Image.new("RGBA", (16, 16))
    source.putdata([(i * 16, 255 - i * 16, 7 * i % 256, i * 16 + 3) for i in range(16)] * 16)
    prepared = opened(prepare(saved(source, "TIFF"), LIMITS))
    assert prepared.mode == "RGBA"
    assert prepared.tobytes() == source.tobytes()  # even the nearly transparent pixels, not premultiplied


def test_grey_with_alpha_becomes_rgba() -> None:
    prepared = opened(prepare(saved(Image.new("LA", (8, 8), (200, 40)), "PNG", exif=exif_orientation(3)), LIMITS))
    assert prepared.mode == "RGBA"
    assert prepared.getpixel((0, 0)) == (200, 200, 200, 40)


def test_a_palette_with_a_transparent_colour_becomes_rgba() -> None:
    source = Image.new("P", (10, 10), 1)
    source.putpalette([0, 0, 0, 250, 20, 20] + [0] * 762)
    source.paste(0, (0, 0, 5, 10))
    body = saved(source, "GIF", transparency=0)
    prepared = opened(prepare(body, LIMITS))
    assert prepared.mode == "RGBA"
    assert prepared.getpixel((2, 5))[3] == 0
    assert prepared.getpixel((7, 5)) == (250, 20, 20, 255)


def test_a_colour_keyed_rgb_image_becomes_rgba_and_is_downscaled_without_a_fringe() -> None:
    key = (0, 255, 0)
    source = Image.new("RGB", (100, 100), key)
    source.paste((200, 0, 0), (50, 0, 100, 100))
    body = saved(source, "PNG", transparency=key)
    prepared = opened(prepare(body, replace(LIMITS, max_pixels=2_500)))
    assert (prepared.mode, prepared.size) == ("RGBA", (50, 50))
    assert prepared.getpixel((5, 25))[3] == 0
    assert prepared.getpixel((45, 25)) == (200, 0, 0, 255)
    # the key colour never shows: every pixel with any opacity is red
    assert all(g < 10 for r, g, b, a in prepared.get_flattened_data() if a > 0)


def test_alpha_is_downscaled_without_dark_or_coloured_fringes() -> None:
    source = Image.new("RGBA", (100, 100), (0, 255, 0, 0))  # invisible green
    source.paste((200, 0, 0, 255), (0, 0, 50, 100))
    prepared = opened(prepare(saved(source, "PNG"), replace(LIMITS, max_pixels=2_500)))
    assert (prepared.mode, prepared.size) == ("RGBA", (50, 50))
    assert all(g < 10 for r, g, b, a in prepared.get_flattened_data() if a > 0)


def test_a_palette_image_is_resampled_in_rgb_not_by_picking_pixels() -> None:
    # a 1-pixel black and white checkerboard: downscaled by half it is an even grey, not black or white
    source = Image.new("P", (64, 64))
    source.putpalette([0, 0, 0, 255, 255, 255] + [0] * 762)
    source.putdata([(x + y) % 2 for y in range(64) for x in range(64)])
    prepared = opened(prepare(saved(source, "GIF"), replace(LIMITS, max_pixels=32 * 32)))
    assert (prepared.mode, prepared.size) == ("RGB", (32, 32))
    r, g, b = prepared.getpixel((16, 16))
    assert 100 < r < 155 and r == g == b


def test_an_animated_gif_gives_its_first_frame() -> None:
    frames = [Image.new("RGB", (8, 8), colour) for colour in ((250, 0, 0), (0, 0, 250))]
    out = io.BytesIO()
    frames[0].save(out, "GIF", save_all=True, append_images=frames[1:], duration=100)
    prepared = opened(prepare(out.getvalue(), LIMITS))
    assert prepared.getpixel((4, 4)) == (250, 0, 0)


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_downscaled_within_the_pixel_limit_keeping_the_aspect(fmt: str) -> None:
    source = Image.new("RGB", (400, 200), (10, 100, 200))
    prepared = opened(prepare(saved(source, fmt), replace(LIMITS, max_pixels=20_000)))
    assert prepared.size == (200, 100)
    assert all(abs(a - b) <= 3 for a, b in zip(prepared.getpixel((100, 50)), (10, 100, 200), strict=True))


@pytest.mark.parametrize(("size", "expected"), [((10_000, 2), (5_000, 1)), ((2, 10_000), (1, 5_000))])
def test_a_thin_source_is_downscaled_within_the_pixel_limit_too(
    size: tuple[int, int], expected: tuple[int, int]
) -> None:
    prepared = opened(prepare(saved(Image.new("RGB", size, (1, 2, 3)), "BMP"), replace(LIMITS, max_pixels=5_000)))
    assert prepared.size == expected


def test_exactly_the_pixel_limit_is_not_downscaled() -> None:
    source = noise((100, 50))
    prepared = opened(prepare(saved(source, "BMP"), replace(LIMITS, max_pixels=5_000)))
    assert prepared.tobytes() == source.tobytes()


def test_a_square_copy_counts_its_padding_in_the_pixel_limit() -> None:
    source = Image.new("RGB", (400, 200), (10, 100, 200))
    prepared = opened(prepare(saved(source, "BMP"), replace(LIMITS, max_pixels=40_000, square=True)))
    assert prepared.size == (200, 200)  # the source downscaled to 200x100, then padded
    prepared = opened(prepare(saved(source, "BMP"), replace(LIMITS, max_pixels=160_000, square=True)))
    assert prepared.size == (400, 400)


def test_a_square_copy_shows_the_source_in_its_middle() -> None:
    source = quadrants((40, 20))
    prepared = opened(prepare(saved(source, "BMP"), replace(LIMITS, square=True)))
    assert prepared.size == (40, 40)
    # the source's rows, but for the one feathered into the margin on each side
    assert prepared.crop((0, 11, 40, 29)).tobytes() == source.crop((0, 1, 40, 19)).tobytes()


def test_a_non_square_copy_stays_in_its_aspect() -> None:
    prepared = opened(prepare(saved(quadrants((40, 20)), "BMP"), LIMITS))
    assert prepared.size == (40, 20)


@pytest.mark.parametrize("square", [False, True])
def test_the_colour_profile_is_kept(square: bool) -> None:
    body = saved(Image.new("RGB", (20, 10)), "TIFF", icc_profile=SRGB)
    prepared = opened(prepare(body, replace(LIMITS, square=square)))
    assert prepared.info.get("icc_profile") == SRGB


def test_a_square_copy_shrunk_to_the_byte_limit_keeps_the_colour_profile() -> None:
    body = saved(noise((80, 40)), "TIFF", icc_profile=SRGB)
    prepared = prepare(body, replace(LIMITS, max_bytes=6_000, square=True))
    assert len(prepared) <= 6_000
    assert opened(prepared).width < 80
    assert opened(prepared).info.get("icc_profile") == SRGB


def test_a_copy_over_the_byte_limit_is_shrunk_until_it_fits_keeping_its_profile() -> None:
    source = noise((80, 40))
    body = saved(source, "TIFF", icc_profile=SRGB)
    whole = prepare(body, LIMITS)
    assert len(whole) > 8_000

    shrunk = prepare(body, replace(LIMITS, max_bytes=4_000))

    assert len(shrunk) <= 4_000
    prepared = opened(shrunk)
    assert prepared.info.get("icc_profile") == SRGB
    assert prepared.width < 80 and abs(prepared.width / prepared.height - 2) < 0.1
    # a copy exactly at the limit is left as it is
    assert prepare(body, replace(LIMITS, max_bytes=len(whole))) == whole


def test_a_header_claiming_too_many_pixels_is_refused_before_decoding() -> None:
    with pytest.raises(UnsupportedImageError, match=r"claims 20000x10000 \(200 megapixels\), over the limit of 50 "):
        prepare(png_claiming(20_000, 10_000), LIMITS)


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"GIF89a but nothing of a picture follows", "not a readable file of that format"),
        (saved(noise((64, 64)), "PNG")[:3000], "truncated"),
    ],
)
def test_an_image_that_does_not_decode_is_refused(body: bytes, reason: str) -> None:
    with pytest.raises(UnsupportedImageError) as caught:
        prepare(body, LIMITS)
    assert caught.value.message.startswith("the image does not decode: ")
    assert reason in caught.value.message


def test_heic_is_prepared() -> None:
    from reframe_pipeline.domain.preparation import _heif_support

    _heif_support()
    body = saved(Image.new("RGB", (32, 16), (200, 100, 50)), "HEIF", quality=95)
    prepared = opened(prepare(body, LIMITS))
    assert (prepared.format, prepared.size) == ("PNG", (32, 16))
    assert all(abs(a - b) <= 8 for a, b in zip(prepared.getpixel((16, 8)), (200, 100, 50), strict=True))
