"""Image facts from bytes (domain/imaging.py): the format told by content, whole images verified at their size,
exact crops, encoding that keeps the colour profile and the XMP packet. Small in-memory images only."""

from __future__ import annotations

import struct
import zlib

import pytest
from PIL import Image, ImageCms, PngImagePlugin

from reframe_pipeline.domain.imaging import (
    FORMATS,
    ImageCheckError,
    WrongSizeError,
    encode,
    fit_exact,
    insert_xmp,
    sniff,
    verify,
)
from reframe_pipeline.domain.resolutions import Size

from .images import noise, opened, saved

pytestmark = pytest.mark.usefixtures("bounded_memory")

SRGB = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
PACKET = b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF>made here</rdf:RDF></x:xmpmeta>'
OLD_PACKET = b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF>an older packet</rdf:RDF></x:xmpmeta>'
JPEG_XMP_ID = b"http://ns.adobe.com/xap/1.0/\x00"


def bands(size: tuple[int, int], colours: list[tuple[int, int, int]], vertical: bool = True) -> Image.Image:
    """Equal bands of flat colour, side by side (vertical=True) or stacked."""
    image = Image.new("RGB", size)
    count = len(colours)
    for index, colour in enumerate(colours):
        if vertical:
            box = (size[0] * index // count, 0, size[0] * (index + 1) // count, size[1])
        else:
            box = (0, size[1] * index // count, size[0], size[1] * (index + 1) // count)
        image.paste(colour, box)
    return image


# --- sniff: the format by its magic bytes, never by name ---------------------------------------------------


@pytest.mark.parametrize(
    ("pillow_format", "key"),
    [("JPEG", "jpeg"), ("PNG", "png"), ("WEBP", "webp"), ("GIF", "gif"), ("BMP", "bmp"), ("TIFF", "tiff")],
)
def test_sniff_knows_each_format_by_its_first_bytes(pillow_format: str, key: str) -> None:
    body = saved(Image.new("RGB", (4, 4), (10, 20, 30)), pillow_format)
    assert sniff(body[:32]) == key
    assert FORMATS[key].name == pillow_format


def test_sniff_knows_big_endian_tiff_and_both_gif_versions() -> None:
    assert sniff(b"MM\x00*" + bytes(28)) == "tiff"
    assert sniff(b"GIF87a" + bytes(26)) == "gif"
    assert sniff(b"GIF89a" + bytes(26)) == "gif"


@pytest.mark.parametrize("brand", [b"avif", b"avis"])
def test_sniff_knows_avif_brands(brand: bytes) -> None:
    assert sniff(b"\x00\x00\x00\x1cftyp" + brand + bytes(20)) == "avif"


@pytest.mark.parametrize("brand", [b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1"])
def test_sniff_knows_heif_brands(brand: bytes) -> None:
    assert sniff(b"\x00\x00\x00\x18ftyp" + brand + bytes(20)) == "heic"


def test_sniff_reads_real_avif_and_heic_files() -> None:
    assert sniff(saved(Image.new("RGB", (8, 8)), "AVIF")[:32]) == "avif"
    from reframe_pipeline.domain.preparation import _heif_support

    _heif_support()
    assert sniff(saved(Image.new("RGB", (8, 8)), "HEIF")[:32]) == "heic"


@pytest.mark.parametrize(
    "head",
    [
        b"",
        b"hello, world: plain text, no image at all",
        b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(20),  # a RIFF file that is not WebP (a WAV sound)
        b"\x00\x00\x00\x18ftypisom" + bytes(20),  # an ISO media file that is no image (an MP4 video)
        b"BM" + bytes(10),  # "BM" and too short for a bitmap header
        b"\x89PNG\r\n\x1a",  # a PNG signature cut short
        b"\xff\xd8",  # a JPEG start without its marker
        b"GIF90a" + bytes(26),
        b"%PDF-1.7" + bytes(24),
    ],
)
def test_sniff_refuses_what_is_not_a_known_image(head: bytes) -> None:
    assert sniff(head) is None


def test_a_bitmap_needs_its_whole_26_byte_header() -> None:
    body = saved(Image.new("RGB", (2, 2)), "BMP")
    assert sniff(body[:26]) == "bmp"
    assert sniff(body[:25]) is None


# --- verify: whole, decodable, of the size asked for --------------------------------------------------------


def test_verify_returns_format_and_size() -> None:
    body = saved(Image.new("RGB", (12, 7)), "PNG")
    assert verify(body) == ("png", Size(12, 7))
    assert verify(body, Size(12, 7)) == ("png", Size(12, 7))


def test_verify_refuses_another_size() -> None:
    body = saved(Image.new("RGB", (12, 7)), "JPEG")
    with pytest.raises(WrongSizeError, match="expected 7x12"):
        verify(body, Size(7, 12))


def test_verify_refuses_bytes_that_are_no_image() -> None:
    with pytest.raises(ImageCheckError) as caught:
        verify(b"<html>an error page</html>")
    assert type(caught.value) is ImageCheckError
    assert str(caught.value) == "the bytes are not a JPEG, PNG, WebP or other known image"


def test_verify_refuses_a_truncated_image_whatever_its_header_says() -> None:
    body = saved(noise((64, 64)), "PNG")
    with pytest.raises(ImageCheckError, match="does not decode") as caught:
        verify(body[: len(body) // 2], Size(64, 64))
    assert type(caught.value) is ImageCheckError  # a broken image, not a wrong size


@pytest.mark.parametrize("progressive", [False, True])
@pytest.mark.parametrize("cut", [0.5, 0.999])
def test_verify_refuses_a_truncated_jpeg_though_it_decodes_jpegs_at_an_eighth(progressive: bool, cut: float) -> None:
    body = saved(noise((640, 256)), "JPEG", quality=90, progressive=progressive)
    assert verify(body, Size(640, 256)) == ("jpeg", Size(640, 256))  # the size as stored, not as decoded
    with pytest.raises(ImageCheckError, match="does not decode"):
        verify(body[: int(len(body) * cut)], Size(640, 256))


# --- fit_exact: cover, then centre-crop ----------------------------------------------------------------------


def test_fit_exact_crops_the_centre_of_a_wide_image() -> None:
    source = bands((300, 100), [(255, 0, 0), (0, 255, 0), (0, 0, 255)])
    result = fit_exact(source, Size(50, 50))
    assert result.size == (50, 50)
    assert result.getpixel((25, 25)) == (0, 255, 0)
    assert result.getpixel((2, 2))[1] > 200 and result.getpixel((47, 47))[1] > 200  # no red or blue kept


def test_fit_exact_crops_the_centre_of_a_tall_image() -> None:
    source = bands((100, 300), [(255, 0, 0), (0, 255, 0), (0, 0, 255)], vertical=False)
    result = fit_exact(source, Size(100, 100))
    assert result.size == (100, 100)
    assert {result.getpixel((x, y)) for x in (0, 50, 99) for y in (0, 50, 99)} == {(0, 255, 0)}


def test_fit_exact_covers_a_larger_size_without_margins() -> None:
    source = bands((40, 20), [(255, 0, 0), (0, 0, 255)])
    result = fit_exact(source, Size(200, 40))
    assert result.size == (200, 40)
    # scaled to 200 wide (the height overflows and is cropped): left half red, right half blue, no border
    assert result.getpixel((0, 0)) == (255, 0, 0)
    assert result.getpixel((199, 39)) == (0, 0, 255)


# --- encode: format, quality, colour profile, XMP -----------------------------------------------------------


@pytest.mark.parametrize("fmt", ["jpeg", "png", "webp", "avif", "gif", "bmp", "tiff"])
def test_encode_writes_the_format_asked_for(fmt: str) -> None:
    body = encode(Image.new("RGB", (10, 6), (90, 120, 200)), fmt)
    assert sniff(body[:32]) == fmt
    assert opened(body).size == (10, 6)


def test_encode_jpeg_flattens_alpha_and_keeps_grey_and_cmyk() -> None:
    assert opened(encode(Image.new("RGBA", (8, 8), (250, 10, 10, 128)), "jpeg")).mode == "RGB"
    assert opened(encode(Image.new("LA", (8, 8), (90, 128)), "jpeg")).mode == "RGB"
    # A greyscale or CMYK image stays in its colour space (its ICC profile, if any, is one of that space).
    assert opened(encode(Image.new("L", (8, 8), 90), "jpeg")).mode == "L"
    assert opened(encode(Image.new("CMYK", (8, 8), (0, 60, 120, 10)), "jpeg")).mode == "CMYK"


@pytest.mark.parametrize("fmt", ["png", "webp"])
def test_encode_keeps_transparency_where_the_format_has_it(fmt: str) -> None:
    image = Image.new("RGBA", (8, 8), (0, 0, 0, 0))
    image.paste((255, 0, 0, 255), (0, 0, 4, 8))
    result = opened(encode(image, fmt, quality=100))
    assert result.mode == "RGBA"
    assert result.getpixel((6, 4))[3] == 0
    assert result.getpixel((1, 4))[3] == 255


@pytest.mark.parametrize("fmt", ["jpeg", "webp", "avif"])
def test_encode_honours_the_quality(fmt: str) -> None:
    image = noise((64, 64))
    low, high = encode(image, fmt, quality=10), encode(image, fmt, quality=95)
    assert len(low) < len(high)


def test_png_is_lossless() -> None:
    image = noise((32, 16))
    assert opened(encode(image, "png")).tobytes() == image.tobytes()


@pytest.mark.parametrize("fmt", ["jpeg", "png", "webp", "avif", "tiff"])
def test_encode_keeps_the_colour_profile(fmt: str) -> None:
    body = encode(Image.new("RGB", (8, 8), (10, 200, 30)), fmt, icc_profile=SRGB)
    assert opened(body).info.get("icc_profile") == SRGB


@pytest.mark.parametrize("fmt", ["jpeg", "png", "webp", "avif"])
def test_encode_without_a_profile_or_packet_adds_none(fmt: str) -> None:
    info = opened(encode(Image.new("RGB", (8, 8)), fmt)).info
    assert "icc_profile" not in info
    assert not any("xmp" in key.lower() for key in info)


@pytest.mark.parametrize("fmt", ["jpeg", "png", "webp", "avif"])
def test_encode_embeds_the_xmp_packet_once(fmt: str) -> None:
    image = noise((16, 8))
    body = encode(image, fmt, quality=95, icc_profile=SRGB, xmp=PACKET)
    result = opened(body)
    assert result.info["xmp"] == PACKET
    assert result.info.get("icc_profile") == SRGB
    assert body.count(b"made here") == 1
    if fmt == "png":
        assert result.tobytes() == image.tobytes()


# --- insert_xmp: the packet put into the bytes as they are --------------------------------------------------


def jpeg_segments(body: bytes) -> list[bytes]:
    """The header segments of a JPEG, SOI to the start of scan: marker and content of each."""
    segments, pos = [], 2
    while body[pos + 1] != 0xDA:
        end = pos + 2 + int.from_bytes(body[pos + 2 : pos + 4])
        segments.append(body[pos:end])
        pos = end
    return segments


def xmp_segment(packet: bytes) -> bytes:
    payload = JPEG_XMP_ID + packet
    return b"\xff\xe1" + (len(payload) + 2).to_bytes(2) + payload


def exif_with(tag: int, value: object) -> bytes:
    exif = Image.Exif()
    exif[tag] = value
    return exif.tobytes()


def test_xmp_in_a_jpeg_keeps_the_pixels_the_jfif_header_first_and_the_exif() -> None:
    body = saved(noise((24, 16)), "JPEG", exif=exif_with(0x8298, "Someone"))
    marked = insert_xmp(body, "jpeg", PACKET)

    result = opened(marked)
    assert result.tobytes() == opened(body).tobytes()
    assert marked.endswith(body[body.index(b"\xff\xda") :])  # the scan is the very same bytes
    assert result.info["xmp"] == PACKET
    assert result.getexif()[0x8298] == "Someone"
    segments = jpeg_segments(marked)
    assert segments[0][:2] == b"\xff\xe0" and segments[0][4:9] == b"JFIF\x00"  # JFIF's APP0 stays first
    assert segments.count(xmp_segment(PACKET)) == 1
    assert len(segments) == len(jpeg_segments(body)) + 1  # nothing else added or lost


def test_xmp_in_a_jpeg_replaces_every_older_packet_wherever_it_is() -> None:
    body = saved(noise((24, 16)), "JPEG", exif=exif_with(0x8298, "Someone"))
    scan = body.index(b"\xff\xda")
    # one packet among the application segments, another just before the scan (after the tables)
    first = body[:2] + xmp_segment(OLD_PACKET) + body[2:scan] + xmp_segment(OLD_PACKET) + body[scan:]

    marked = insert_xmp(insert_xmp(first, "jpeg", OLD_PACKET), "jpeg", PACKET)

    assert marked.count(JPEG_XMP_ID) == 1
    assert opened(marked).info["xmp"] == PACKET
    assert opened(marked).getexif()[0x8298] == "Someone"
    assert opened(marked).tobytes() == opened(body).tobytes()


def test_xmp_in_a_jpeg_is_found_by_markers_not_by_the_bytes_around_them() -> None:
    """A large segment (a comment, as big as an ICC profile) whose length and last byte read like the markers
    that end the header: the older packet after it is still found and replaced."""
    body = saved(noise((24, 16)), "JPEG")
    scan = body.index(b"\xff\xda")
    text = b"c" * (0xDA00 - 3) + b"\xda"  # its length starts with 0xDA, its last byte is 0xDA
    comment = b"\xff\xfe" + (len(text) + 2).to_bytes(2) + text
    first = body[:scan] + comment + xmp_segment(OLD_PACKET) + body[scan:]

    marked = insert_xmp(first, "jpeg", PACKET)

    assert marked.count(JPEG_XMP_ID) == 1
    assert opened(marked).info["xmp"] == PACKET
    assert opened(marked).tobytes() == opened(body).tobytes()


def test_xmp_in_a_jpeg_without_jfif_header() -> None:
    body = saved(Image.new("CMYK", (8, 8), (0, 60, 120, 10)), "JPEG")
    assert body[2:4] != b"\xff\xe0"
    marked = insert_xmp(body, "jpeg", PACKET)
    assert opened(marked).info["xmp"] == PACKET
    assert opened(marked).tobytes() == opened(body).tobytes()


def png_chunks(body: bytes) -> list[tuple[bytes, bytes]]:
    chunks, pos = [], 8
    while pos < len(body):
        length = int.from_bytes(body[pos : pos + 4])
        kind, data = body[pos + 4 : pos + 8], body[pos + 8 : pos + 8 + length]
        assert body[pos + 8 + length : pos + 12 + length] == struct.pack(">I", zlib.crc32(kind + data))
        chunks.append((kind, data))
        pos += 12 + length
    return chunks


def test_xmp_in_a_png_keeps_the_pixels_the_profile_and_the_other_texts() -> None:
    text = PngImagePlugin.PngInfo()
    text.add_itxt("Description", "a caption that stays")
    body = saved(noise((20, 10)), "PNG", icc_profile=SRGB, pnginfo=text)

    marked = insert_xmp(insert_xmp(body, "png", OLD_PACKET), "png", PACKET)

    result = opened(marked)
    assert result.tobytes() == opened(body).tobytes()
    assert result.info["XML:com.adobe.xmp"] == PACKET.decode()
    assert result.info["Description"] == "a caption that stays"
    assert result.info["icc_profile"] == SRGB
    kinds = [kind for kind, _ in png_chunks(marked)]  # every CRC checked too
    assert kinds[0] == b"IHDR" and kinds[-1] == b"IEND"
    assert kinds.count(b"iTXt") == 2  # the caption and one packet
    assert sorted(kinds) == sorted([kind for kind, _ in png_chunks(body)] + [b"iTXt"])


def test_xmp_in_a_png_whatever_its_checksum() -> None:
    # CRCs with the top bit set must be written unsigned: try packets until one has such a CRC
    body = saved(Image.new("RGB", (4, 4), (1, 2, 3)), "PNG")
    crcs = []
    for n in range(64):
        packet = PACKET + b" " * n
        marked = insert_xmp(body, "png", packet)
        chunk = next(data for kind, data in png_chunks(marked) if kind == b"iTXt")
        crcs.append(zlib.crc32(b"iTXt" + chunk))
        assert opened(marked).info["XML:com.adobe.xmp"] == packet.decode()
    assert max(crcs) >= 2**31 > min(crcs)
