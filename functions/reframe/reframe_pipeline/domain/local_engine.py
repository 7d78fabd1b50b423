"""Offline reframing: fit the whole source inside the canvas and fill the margins with a blurred mirror.

No generative model here: the margins are a strongly blurred, mirrored continuation of the source, and
the source is laid on top with feathered edges so no hard seam shows. Pure and deterministic.
"""

from __future__ import annotations

from PIL import Image, ImageChops, ImageFilter

from reframe_pipeline.domain.resolutions import Size

# The background is built at 1/_BACKGROUND_SCALE of the canvas: blurring a small copy is what makes it fast.
_BACKGROUND_SCALE = 8
# How far the source's edge fades into the background, as a fraction of the fitted short side.
_FEATHER_FRACTION = 0.04
_MAX_FEATHER = 24
# Transparent sources are flattened on white, as most viewers show them.
_MATTE = (255, 255, 255)


def fitted_box(source: Size, size: Size) -> tuple[int, int, int, int]:
    """Where the source lands on a canvas of ``size``: ``(left, top, width, height)``, fit inside, centred."""
    scale = min(size.width / source.width, size.height / source.height)
    width = min(size.width, max(1, round(source.width * scale)))
    height = min(size.height, max(1, round(source.height * scale)))
    return (size.width - width) // 2, (size.height - height) // 2, width, height


def extend_canvas(image: Image.Image, size: Size) -> Image.Image:
    """An RGB image of exactly ``size`` showing the whole source, centred, with plausible margins."""
    source = _to_rgb(image)
    left, top, width, height = fitted_box(Size(*source.size), size)
    fitted = source.resize((width, height), Image.Resampling.LANCZOS)
    if (width, height) == tuple(size):
        return fitted
    canvas = _background(fitted, size, left, top)
    canvas.paste(fitted, (left, top), _feather_mask(width, height, size, left, top))
    return canvas


def pad_to_square(image: Image.Image) -> Image.Image:
    """The source on a square canvas of its longer side, margins filled as ``extend_canvas`` does."""
    side = max(image.size)
    return extend_canvas(image, Size(side, side))


def _to_rgb(image: Image.Image) -> Image.Image:
    if "transparency" in image.info and image.mode in ("P", "L", "RGB"):
        image = image.convert("RGBA")  # transparent palette entries, or a colour key (PNG tRNS): an alpha channel
    if image.mode == "RGB":
        return image
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = image.convert("RGBA")
        flat = Image.new("RGB", rgba.size, _MATTE)
        flat.paste(rgba, mask=rgba.getchannel("A"))
        return flat
    if image.mode.startswith(("I", "F")):
        # 16/32-bit greyscale: squeeze into 8 bits first, as convert("RGB") would clip.
        image = image.point(lambda value: value / 256).convert("L")
    return image.convert("RGB")


def _background(fitted: Image.Image, size: Size, left: int, top: int) -> Image.Image:
    """The fitted source mirrored outwards to cover the canvas, blurred at a small scale, scaled back up."""
    small = Size(max(1, size.width // _BACKGROUND_SCALE), max(1, size.height // _BACKGROUND_SCALE))
    sx, sy = small.width / size.width, small.height / size.height
    tile_w, tile_h = max(1, round(fitted.width * sx)), max(1, round(fitted.height * sy))
    tile = fitted.resize((tile_w, tile_h), Image.Resampling.BILINEAR)
    flips = [(False, False), (True, False), (False, True), (True, True)]
    tiles = {flip: _flipped(tile, *flip) for flip in flips}
    # Enough mirrored copies on each side to reach the canvas edges, even from a thin source.
    reach_x = small.width // tile_w + 1 if fitted.width < size.width else 0
    reach_y = small.height // tile_h + 1 if fitted.height < size.height else 0
    origin_x, origin_y = round(left * sx), round(top * sy)
    back = Image.new("RGB", small)
    for i in range(-reach_x, reach_x + 1):
        for j in range(-reach_y, reach_y + 1):
            back.paste(tiles[(i % 2 == 1, j % 2 == 1)], (origin_x + i * tile_w, origin_y + j * tile_h))
    radius = max(1.0, min(small) / 10)
    back = back.filter(ImageFilter.GaussianBlur(radius))
    return back.resize(tuple(size), Image.Resampling.BILINEAR)


def _flipped(tile: Image.Image, flip_x: bool, flip_y: bool) -> Image.Image:
    if flip_x:
        tile = tile.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    if flip_y:
        tile = tile.transpose(Image.Transpose.FLIP_TOP_BOTTOM)
    return tile


def _feather_mask(width: int, height: int, size: Size, left: int, top: int) -> Image.Image:
    """Opaque inside, fading to transparent over a few pixels on the sides that border a margin."""
    feather = max(1, min(_MAX_FEATHER, round(min(width, height) * _FEATHER_FRACTION)))
    right, bottom = size.width - left - width, size.height - top - height
    across = _ramp(width, feather, left > 0, right > 0).resize((width, height), Image.Resampling.NEAREST)
    down = _ramp(height, feather, top > 0, bottom > 0).transpose(Image.Transpose.TRANSPOSE)
    return ImageChops.multiply(across, down.resize((width, height), Image.Resampling.NEAREST))


def _ramp(length: int, feather: int, fade_start: bool, fade_end: bool) -> Image.Image:
    """A 1-pixel-high alpha row: 255, except linear fades at the ends that are asked for."""
    feather = min(feather, length // 2)
    row = bytearray(b"\xff" * length)
    for k in range(feather):
        level = round(255 * (k + 1) / (feather + 1))
        if fade_start:
            row[k] = level
        if fade_end:
            row[length - 1 - k] = level
    return Image.frombytes("L", (length, 1), bytes(row))
