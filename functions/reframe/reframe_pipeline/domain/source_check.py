"""Does the source survive the reframe? Find it inside a provider's result and score how well it matches.

Nothing is assumed about where, or at what scale, the provider put the source. The search runs on small
grayscale thumbnails in two steps:

1. **Locate** by normalised cross-correlation (NCC): exhaustively over every position and a geometric series
   of scales on a coarse copy of the result (longest side ``COARSE``), then hill-climbing position and
   scale from the best few candidates on a finer copy (sized so the best candidate spans about ``FINE`` px, at
   most ``LARGEST_FINE``), with a parabolic fit of the
   peak for sub-pixel accuracy. NCC is insensitive to the brightness and contrast changes a model makes
   and each evaluation is a few dot products, so the search stays fast in plain Python.
2. **Score** the found box with the structural similarity index (SSIM, 8x8 windows, stride 4) between the
   source's thumbnail and the box, both at ``SCORE`` px on the longest side. SSIM compares local structure
   window by window, so a repainted region pulls the score down even when the rest lines up perfectly,
   which a single correlation over the whole box would dilute.

Pure: Pillow and plain Python on thumbnails only (a few kilobytes), whatever the size of the images.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from operator import mul

from PIL import Image, ImageFilter

from reframe_pipeline.domain.cropping import Box

# The source's kept thumbnail: longest side in pixels (grayscale, so 16 KB at most).
THUMBNAIL = 128
# The coarse search's copy of the result (longest side), the size the best candidate spans in the fine search's
# copy, and the scoring size (longest side).
COARSE = 48
FINE = 96
SCORE = 64
# The fine copy's longest side at most: its tables are Python lists, so memory and time stay small when the
# best candidate is tiny (or the result is flat and every candidate is as bad as the next).
LARGEST_FINE = 320
# Scales tried in the coarse search, as fractions of the largest size at which the source fits the result.
_SMALLEST_SCALE = 0.25
_SCALE_STEPS = 12
_SMALLEST_TEMPLATE = 6  # coarse pixels: below this a template says nothing
_CANDIDATES = 4  # coarse peaks refined on the fine copy
_WINDOW = 8
_BLUR = 1.0  # score pixels
_STRIDE = 4
# SSIM's stabilising constants for 8-bit values (K1 = 0.01, K2 = 0.03).
_C1 = (0.01 * 255) ** 2
_C2 = (0.03 * 255) ** 2


@dataclass(frozen=True)
class SourceMatch:
    score: float  # 0..1: the mean SSIM at the box, clamped at 0
    box: Box
    correlation: float  # the NCC of the located box on the fine copy (-1..1)


def thumbnail(image: Image.Image) -> Image.Image:
    """The source's grayscale thumbnail, ``THUMBNAIL`` px on its longest side (never enlarged)."""
    image.draft("L", (THUMBNAIL, THUMBNAIL))  # a JPEG decodes at 1/2..1/8 scale: memory stays small
    gray = _gray(image)
    gray.thumbnail((THUMBNAIL, THUMBNAIL), Image.Resampling.BOX)
    return gray


def check(source_thumbnail: Image.Image, result: Image.Image) -> SourceMatch:
    """Locate ``source_thumbnail`` in ``result`` (any size, any mode) and score the match."""
    gray = _gray(result)
    width, height = gray.size
    coarse = _shrink(gray, COARSE)
    aspect = source_thumbnail.height / source_thumbnail.width
    candidates = _coarse_search(source_thumbnail, coarse, aspect)
    # The fine copy is sized so that the best candidate spans about FINE px: precision relative to the box.
    longest = max(candidates[0][3], candidates[0][3] * aspect) if candidates else COARSE
    fine = _shrink(gray, min(LARGEST_FINE, round(max(coarse.size) * FINE / longest)))
    factor = fine.width / coarse.width
    fine_grid = _Grid(fine)
    best: tuple[float, float, float, float] | None = None
    for _, cx, cy, ctw in candidates:
        found = _climb(source_thumbnail, fine_grid, aspect, round(cx * factor), round(cy * factor), round(ctw * factor))
        if best is None or found[0] > best[0]:
            best = found
    if best is None:  # the result is too small to hold any template: compare the whole of it
        box = Box(0, 0, width, height)
        return SourceMatch(_score(source_thumbnail, gray, box), box, 0.0)
    correlation, fx, fy, ftw = best
    scale_x, scale_y = width / fine.width, height / fine.height
    box_w = max(1, min(width, round(ftw * scale_x)))
    box_h = max(1, min(height, round(ftw * aspect * scale_y)))
    box = Box(
        max(0, min(width - box_w, round(fx * scale_x))),
        max(0, min(height - box_h, round(fy * scale_y))),
        box_w,
        box_h,
    )
    return SourceMatch(_score(source_thumbnail, gray, box), box, correlation)


def _gray(image: Image.Image) -> Image.Image:
    if image.mode in ("RGBA", "LA", "PA", "P"):
        rgba = image.convert("RGBA")
        flat = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        flat.alpha_composite(rgba)
        return flat.convert("L")
    if image.mode.startswith(("I", "F")):
        return image.point(lambda value: value / 256).convert("L")
    return image.convert("L")


def _shrink(image: Image.Image, longest: int) -> Image.Image:
    scale = longest / max(image.size)
    if scale >= 1:
        return image.copy()
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    factor = min(image.width // size[0], image.height // size[1])
    if factor >= 2:  # a cheap integer reduction first: the resize then reads far fewer pixels
        image = image.reduce(factor)
    return image.resize(size, Image.Resampling.BOX)


def _rows(image: Image.Image) -> list[list[int]]:
    data = list(image.tobytes())  # mode L: one byte a pixel
    return [data[i : i + image.width] for i in range(0, len(data), image.width)]


class _Grid:
    """A grayscale image as rows, with summed-area tables of values and squares: any window's mean and
    variance in constant time."""

    def __init__(self, image: Image.Image) -> None:
        self.width, self.height = image.size
        self.rows = _rows(image)
        self.sums = [[0] * (self.width + 1) for _ in range(self.height + 1)]
        self.squares = [[0] * (self.width + 1) for _ in range(self.height + 1)]
        for y, row in enumerate(self.rows):
            run = run_sq = 0
            above, above_sq = self.sums[y], self.squares[y]
            here, here_sq = self.sums[y + 1], self.squares[y + 1]
            for x, value in enumerate(row):
                run += value
                run_sq += value * value
                here[x + 1] = above[x + 1] + run
                here_sq[x + 1] = above_sq[x + 1] + run_sq

    def window(self, x: int, y: int, w: int, h: int) -> tuple[int, int]:
        s, q = self.sums, self.squares
        return (
            s[y + h][x + w] - s[y][x + w] - s[y + h][x] + s[y][x],
            q[y + h][x + w] - q[y][x + w] - q[y + h][x] + q[y][x],
        )


class _Template:
    """The source's thumbnail resized to ``w`` x ``h``, zero-mean, with its norm."""

    def __init__(self, source: Image.Image, w: int, h: int) -> None:
        self.w, self.h = w, h
        rows = _rows(source.resize((w, h), Image.Resampling.BOX))
        mean = sum(map(sum, rows)) / (w * h)
        self.rows = [[value - mean for value in row] for row in rows]
        self.norm = math.sqrt(sum(sum(v * v for v in row) for row in self.rows))

    def ncc(self, grid: _Grid, x: int, y: int) -> float:
        """The correlation of the template with the window at (x, y): -1..1, 0 where either is flat."""
        n = self.w * self.h
        total, squares = grid.window(x, y, self.w, self.h)
        variance = squares - total * total / n
        if variance <= 1e-9 or self.norm <= 1e-9:
            return 0.0
        cross = 0.0
        right = x + self.w
        for row, template_row in zip(grid.rows[y : y + self.h], self.rows, strict=True):
            cross += sum(map(mul, row[x:right], template_row))
        return cross / (math.sqrt(variance) * self.norm)


def _coarse_search(source: Image.Image, coarse: Image.Image, aspect: float) -> list[tuple[float, int, int, int]]:
    """The best few (ncc, x, y, template width) over every position and scale, one per scale at most."""
    grid = _Grid(coarse)
    fit_w = min(coarse.width, coarse.height / aspect)
    peaks: list[tuple[float, int, int, int]] = []
    seen: set[int] = set()
    for step in range(_SCALE_STEPS):
        scale = _SMALLEST_SCALE ** (step / (_SCALE_STEPS - 1))
        w = min(coarse.width, round(fit_w * scale))
        h = min(coarse.height, round(w * aspect))
        if w in seen or min(w, h) < _SMALLEST_TEMPLATE:
            continue
        seen.add(w)
        template = _Template(source, w, h)
        best = max(
            (template.ncc(grid, x, y), x, y, w)
            for y in range(coarse.height - h + 1)
            for x in range(coarse.width - w + 1)
        )
        peaks.append(best)
    peaks.sort(reverse=True)
    return peaks[:_CANDIDATES]


# The hill climb's moves: one pixel in each direction, a width step, and a diagonal that keeps the centre.
_STEPS = ((-1, 0, 0), (1, 0, 0), (0, -1, 0), (0, 1, 0), (0, 0, -1), (0, 0, 1), (-1, -1, 2), (1, 1, -2))


def _climb(
    source: Image.Image, grid: _Grid, aspect: float, x: int, y: int, w: int
) -> tuple[float, float, float, float]:
    """Hill-climb (x, y, width) from a coarse peak on the fine copy; returns (ncc, x, y, width), the position
    refined to sub-pixel by a parabola through the peak and its neighbours."""
    templates: dict[int, _Template | None] = {}

    def template(width: int) -> _Template | None:
        if width not in templates:
            height = round(width * aspect)
            fits = _SMALLEST_TEMPLATE <= width <= grid.width and _SMALLEST_TEMPLATE <= height <= grid.height
            templates[width] = _Template(source, width, height) if fits else None
        return templates[width]

    scores: dict[tuple[int, int, int], float] = {}

    def score(px: int, py: int, pw: int) -> float:
        key = (px, py, pw)
        if key not in scores:
            t = template(pw)
            inside = t is not None and 0 <= px <= grid.width - t.w and 0 <= py <= grid.height - t.h
            scores[key] = t.ncc(grid, px, py) if t is not None and inside else -2.0
        return scores[key]

    w = max(_SMALLEST_TEMPLATE, min(grid.width, w))
    while template(w) is None and w > _SMALLEST_TEMPLATE:
        w -= 1
    current = (x, y, w)
    best = score(*current)
    for _ in range(200):  # a bound, never reached in practice
        neighbours = [(current[0] + dx, current[1] + dy, current[2] + dw) for dx, dy, dw in _STEPS]
        top = max(neighbours, key=lambda n: score(*n))
        if score(*top) <= best:
            break
        current, best = top, score(*top)
    return _refined(score, current, best)


def _refined(
    score: Callable[[int, int, int], float], peak: tuple[int, int, int], best: float
) -> tuple[float, float, float, float]:
    """(ncc, x, y, width) at ``peak``, the position refined to sub-pixel by a parabola through its neighbours."""
    cx, cy, cw = peak
    return (
        best,
        cx + _vertex(score(cx - 1, cy, cw), best, score(cx + 1, cy, cw)),
        cy + _vertex(score(cx, cy - 1, cw), best, score(cx, cy + 1, cw)),
        cw + _vertex(score(cx, cy, cw - 1), best, score(cx, cy, cw + 1)),
    )


def _vertex(before: float, peak: float, after: float) -> float:
    """The offset (-0.5..0.5) of a parabola's vertex through three equally spaced samples around a peak."""
    if before < -1 or after < -1:
        return 0.0
    curvature = before - 2 * peak + after
    if curvature >= 0:
        return 0.0
    return max(-0.5, min(0.5, 0.5 * (before - after) / curvature))


def _score(source: Image.Image, result: Image.Image, box: Box) -> float:
    """The mean SSIM between the source and the result's ``box``, both at ``SCORE`` px: 0..1. Both go through a
    thumbnail of the same size and a slight blur, so resampling alone (sub-pixel shifts of fine texture) does
    not count as a difference."""
    size = _score_size(source.size)
    crop = _shrink(result.crop((box.x, box.y, box.x + box.width, box.y + box.height)), max(source.size))
    a = _rows(_prepare(source, size))
    b = _rows(_prepare(crop, size))
    return max(0.0, min(1.0, ssim(a, b)))


def _prepare(image: Image.Image, size: tuple[int, int]) -> Image.Image:
    return image.resize(size, Image.Resampling.BOX).filter(ImageFilter.GaussianBlur(_BLUR))


def _score_size(size: tuple[int, int]) -> tuple[int, int]:
    scale = SCORE / max(size)
    return max(_WINDOW, round(size[0] * scale)), max(_WINDOW, round(size[1] * scale))


def ssim(a: list[list[int]], b: list[list[int]]) -> float:
    """Mean SSIM of two equally sized grayscale images (rows of 0..255) over 8x8 windows at a stride of 4."""
    height, width = len(a), len(a[0])
    n = _WINDOW * _WINDOW
    total = 0.0
    windows = 0
    for y in _starts(height):
        for x in _starts(width):
            wa = [v for row in a[y : y + _WINDOW] for v in row[x : x + _WINDOW]]
            wb = [v for row in b[y : y + _WINDOW] for v in row[x : x + _WINDOW]]
            sa, sb = sum(wa), sum(wb)
            ma, mb = sa / n, sb / n
            va = sum(map(mul, wa, wa)) / n - ma * ma
            vb = sum(map(mul, wb, wb)) / n - mb * mb
            cov = sum(map(mul, wa, wb)) / n - ma * mb
            total += ((2 * ma * mb + _C1) * (2 * cov + _C2)) / ((ma * ma + mb * mb + _C1) * (va + vb + _C2))
            windows += 1
    return total / windows


def _starts(length: int) -> list[int]:
    """Window origins covering ``length``: every ``_STRIDE`` px, and the last window flush with the edge."""
    starts = list(range(0, max(1, length - _WINDOW + 1), _STRIDE))
    if starts[-1] != max(0, length - _WINDOW):
        starts.append(max(0, length - _WINDOW))
    return starts
