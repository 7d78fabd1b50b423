"""Images made for tests: asymmetric gradients, encodings, and headers that lie."""

from __future__ import annotations

import io
import struct
import zlib

from PIL import Image


def gradient(size: tuple[int, int]) -> Image.Image:
    """Asymmetric on purpose: red falls left to right, blue grows top to bottom."""
    red = Image.linear_gradient("L").rotate(90).resize(size)
    blue = Image.linear_gradient("L").resize(size)
    return Image.merge("RGB", (red.transpose(Image.Transpose.FLIP_LEFT_RIGHT), Image.new("L", size, 40), blue))


def encoded(image: Image.Image, fmt: str, **options: object) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, **options)
    return out.getvalue()


def png_header_only(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims a size: decoding it would need width x height x 3 bytes."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 1024)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")
