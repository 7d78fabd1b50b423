"""What each variant says about how it was made (domain/provenance.py; docs/provenance.md): the XMP packet
parsed as XML by its namespaces, the digital source type and model per provider, and the source's credits."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
from PIL import Image

from reframe_pipeline.domain.provenance import (
    COMPOSITE_SYNTHETIC,
    COMPOSITE_WITH_TRAINED,
    Credits,
    provenance_for,
    source_credits,
    xmp_packet,
)

from .images import saved

# The namespaces of the XMP and IPTC specifications
X = "adobe:ns:meta/"
RDF = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
IPTC_EXT = "http://iptc.org/std/Iptc4xmpExt/2008-02-29/"
XMP = "http://ns.adobe.com/xap/1.0/"
DC = "http://purl.org/dc/elements/1.1/"
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"


def description(packet: bytes) -> ET.Element:
    root = ET.fromstring(packet.decode())
    assert root.tag == f"{{{X}}}xmpmeta"
    (rdf,) = root
    assert rdf.tag == f"{{{RDF}}}RDF"
    (described,) = rdf
    assert described.tag == f"{{{RDF}}}Description"
    assert described.get(f"{{{RDF}}}about") == ""
    return described


@pytest.mark.parametrize(
    ("provider", "source_type", "model"),
    [
        ("segmind", COMPOSITE_WITH_TRAINED, "Ideogram 3.0 Reframe (Segmind)"),
        ("ideogram", COMPOSITE_WITH_TRAINED, "Ideogram 3.0 Reframe"),
        ("local", COMPOSITE_SYNTHETIC, None),
    ],
)
def test_each_provider_says_how_it_makes_images(provider: str, source_type: str, model: str | None) -> None:
    provenance = provenance_for(provider)
    assert (provenance.digital_source_type, provenance.model) == (source_type, model)
    described = description(xmp_packet(provenance, Credits()))
    assert described.get(f"{{{IPTC_EXT}}}DigitalSourceType") == source_type
    assert described.get(f"{{{IPTC_EXT}}}AISystemUsed") == model
    assert described.get(f"{{{XMP}}}CreatorTool") == "Reframe Pipeline"
    assert list(described) == []  # no credits: no creator, no rights
    assert described.text is None


def test_the_packet_is_wrapped_as_the_xmp_specification_asks() -> None:
    packet = xmp_packet(provenance_for("local"), Credits()).decode()
    assert packet.startswith('<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>')
    assert packet.endswith('<?xpacket end="r"?>')


def test_the_credits_are_carried_escaped() -> None:
    credits = Credits(creator='A & B <studio> "x"', rights="© 2026 A & B")
    described = description(xmp_packet(provenance_for("segmind"), credits))
    creator, rights = described
    assert creator.tag == f"{{{DC}}}creator"
    (seq,) = creator
    assert seq.tag == f"{{{RDF}}}Seq"
    assert [li.text for li in seq] == ['A & B <studio> "x"']
    assert [li.tag for li in seq] == [f"{{{RDF}}}li"]
    assert rights.tag == f"{{{DC}}}rights"
    (alt,) = rights
    assert alt.tag == f"{{{RDF}}}Alt"
    ((li),) = alt
    assert (li.tag, li.text, li.get(XML_LANG)) == (f"{{{RDF}}}li", "© 2026 A & B", "x-default")


def test_only_the_credits_there_are_carried() -> None:
    (creator,) = description(xmp_packet(provenance_for("local"), Credits(creator="Jane")))
    assert creator.tag == f"{{{DC}}}creator"
    (rights,) = description(xmp_packet(provenance_for("local"), Credits(rights="CC BY 4.0")))
    assert rights.tag == f"{{{DC}}}rights"


def exif_header(**tags: object) -> bytes:
    exif = Image.Exif()
    for tag, value in tags.items():
        exif[{"artist": 0x013B, "copyright": 0x8298}[tag]] = value
    return saved(Image.new("RGB", (8, 8)), "JPEG", exif=exif.tobytes())


def test_the_source_credits_come_from_its_exif() -> None:
    assert source_credits(exif_header(artist="Jane", copyright="(c) Jane")) == Credits(
        creator="Jane", rights="(c) Jane"
    )
    assert source_credits(exif_header(copyright="(c) Jane")) == Credits(creator=None, rights="(c) Jane")


def test_padding_is_trimmed_and_empty_credits_are_none() -> None:
    assert source_credits(exif_header(artist="Jane\x00\x00 ", copyright="  ")) == Credits(creator="Jane", rights=None)
    assert source_credits(exif_header(artist=" Xavier X\x00")) == Credits(creator="Xavier X", rights=None)


def test_no_credits_from_an_image_without_exif_or_bytes_that_are_no_image() -> None:
    assert source_credits(saved(Image.new("RGB", (8, 8)), "PNG")) == Credits()
    assert source_credits(b"\x89PNG\r\n\x1a\n cut short") == Credits()
