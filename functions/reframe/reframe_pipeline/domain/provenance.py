"""What each variant says about how it was made (docs/provenance.md): an XMP packet with the IPTC digital
source type, the tool and the model, and the source's own creator and rights."""

from __future__ import annotations

import io
from dataclasses import dataclass
from xml.sax.saxutils import escape, quoteattr

from PIL import Image
from pydantic import BaseModel

DIGITAL_SOURCE_TYPES = "http://cv.iptc.org/newscodes/digitalsourcetype/"
# A real image extended by a trained model (outpainting): what the reframe APIs do.
COMPOSITE_WITH_TRAINED = DIGITAL_SOURCE_TYPES + "compositeWithTrainedAlgorithmicMedia"
# The local engine keeps the whole photo and fills the margins from its own blurred, mirrored edges, by a
# fixed algorithm with no trained model: a composite of the capture and synthetic (non-generative) content.
COMPOSITE_SYNTHETIC = DIGITAL_SOURCE_TYPES + "compositeSynthetic"
TOOL = "Reframe Pipeline"
_MODELS = {"segmind": "Ideogram 3.0 Reframe (Segmind)", "ideogram": "Ideogram 3.0 Reframe"}
# EXIF tags carried over from the source.
_ARTIST, _COPYRIGHT = 0x013B, 0x8298


@dataclass(frozen=True)
class Credits:
    """Who made the source and who holds its rights, as its own metadata says."""

    creator: str | None = None
    rights: str | None = None


class Provenance(BaseModel, frozen=True):
    """How a variant was made, as its XMP says it and its manifest entry records it."""

    digital_source_type: str  # an IPTC NewsCodes URI
    model: str | None  # the generative model; None for the local engine
    signed: bool = False  # the variant carries C2PA Content Credentials (C2PA_SIGNING=on)


def provenance_for(provider: str) -> Provenance:
    model = _MODELS.get(provider)
    return Provenance(digital_source_type=COMPOSITE_WITH_TRAINED if model else COMPOSITE_SYNTHETIC, model=model)


def source_credits(header: bytes) -> Credits:
    """The creator and copyright from the source's EXIF, read from its first bytes; none when absent or
    unreadable (credits are carried when present, never a reason to fail)."""
    try:
        with Image.open(io.BytesIO(header)) as image:
            exif = image.getexif()
    except Exception:  # Pillow raises many types for partial or odd data
        return Credits()

    def text(tag: int) -> str | None:
        value = exif.get(tag)
        return value.strip("\x00 ") or None if isinstance(value, str) else None

    return Credits(creator=text(_ARTIST), rights=text(_COPYRIGHT))


def xmp_packet(provenance: Provenance, credits: Credits) -> bytes:
    attributes = {
        "Iptc4xmpExt:DigitalSourceType": provenance.digital_source_type,
        "xmp:CreatorTool": TOOL,
    }
    if provenance.model:
        attributes["Iptc4xmpExt:AISystemUsed"] = provenance.model
    properties = ""
    if credits.creator:
        properties += f"<dc:creator><rdf:Seq><rdf:li>{escape(credits.creator)}</rdf:li></rdf:Seq></dc:creator>"
    if credits.rights:
        properties += (
            f'<dc:rights><rdf:Alt><rdf:li xml:lang="x-default">{escape(credits.rights)}</rdf:li></rdf:Alt></dc:rights>'
        )
    described = " ".join(f"{name}={quoteattr(value)}" for name, value in attributes.items())
    return (
        '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>'
        '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        '<rdf:Description rdf:about="" xmlns:Iptc4xmpExt="http://iptc.org/std/Iptc4xmpExt/2008-02-29/"'
        ' xmlns:xmp="http://ns.adobe.com/xap/1.0/" xmlns:dc="http://purl.org/dc/elements/1.1/"'
        f" {described}>{properties}</rdf:Description></rdf:RDF></x:xmpmeta>"
        '<?xpacket end="r"?>'
    ).encode()
