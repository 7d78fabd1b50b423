"""Small in-memory images for the unit tests of the image modules."""

from __future__ import annotations

import io
import random

from PIL import Image


def saved(image: Image.Image, fmt: str, **options: object) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, **options)
    return out.getvalue()


def opened(body: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(body))
    image.load()
    return image


def noise(size: tuple[int, int]) -> Image.Image:
    """Pixels that do not compress: a fixed pseudo-random pattern."""
    return Image.frombytes("RGB", size, random.Random(size[0] * 1000 + size[1]).randbytes(size[0] * size[1] * 3))
