"""XMP inserted into JPEG and PNG bytes as they are: the pixels (and a JPEG's EXIF) untouched, one packet
however many times it is marked; read back with exiftool."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image

from reframe_pipeline.domain.imaging import insert_xmp
from reframe_pipeline.domain.provenance import (
    COMPOSITE_WITH_TRAINED,
    Credits,
    provenance_for,
    source_credits,
    xmp_packet,
)

from ..exiftool import needs_exiftool, read_tags

PACKET = xmp_packet(provenance_for("ideogram"), Credits(creator="A & B <studio>", rights='© 2026 "A"'))


def image_bytes(fmt: str) -> bytes:
    exif = Image.Exif()
    exif[0x8298] = "Someone"
    out = io.BytesIO()
    Image.radial_gradient("L").convert("RGB").save(out, fmt, exif=exif.tobytes())
    return out.getvalue()


@needs_exiftool
@pytest.mark.parametrize("fmt", ["jpeg", "png"])
def test_inserted_xmp_reads_back_and_leaves_the_pixels_alone(fmt: str, tmp_path: Path):
    body = image_bytes(fmt)
    marked = insert_xmp(insert_xmp(body, fmt, PACKET), fmt, PACKET)  # marked twice: still one packet

    assert Image.open(io.BytesIO(marked)).tobytes() == Image.open(io.BytesIO(body)).tobytes()
    if fmt == "jpeg":  # the entropy-coded scan is the very same bytes
        assert marked.endswith(body[body.index(b"\xff\xda") :])
    tags = read_tags(marked, tmp_path)
    assert tags["XMP-iptcExt:DigitalSourceType"] == COMPOSITE_WITH_TRAINED
    assert tags["XMP-dc:Creator"] == "A & B <studio>"
    assert tags["XMP-dc:Rights"] == '© 2026 "A"'
    assert tags["IFD0:Copyright"] == "Someone"  # the image's own EXIF kept
    assert marked.count(b"DigitalSourceType") == 1
    assert "Warning" not in tags


def test_source_credits_come_from_the_exif_and_are_optional():
    exif = Image.Exif()
    exif[0x013B] = "Jane"
    out = io.BytesIO()
    Image.new("RGB", (8, 8)).save(out, "JPEG", exif=exif.tobytes())
    assert source_credits(out.getvalue()) == Credits(creator="Jane", rights=None)
    assert source_credits(b"not an image") == Credits()
