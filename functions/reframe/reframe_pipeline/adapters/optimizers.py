"""Lossless optimizers of deliverables (docs/outputs.md, "Optimized bytes"): JPEG through mozjpeg's
(progressive, optimized Huffman tables), PNG through oxipng. The pixels do not change, and every
marker and chunk stays: the XMP provenance, the colour profile."""

from __future__ import annotations

import mozjpeg_lossless_optimization
import oxipng

from reframe_pipeline.observability import logger

# oxipng's level 1 saves 5.3 % of the bytes at 0.56 s CPU per megapixel, level 2 5.6 % at 1.1 s and
# level 4 6.3 % at 3.8 s (the sample photos at 1344x704, docs/benchmarks.md): past 1, each step costs
# double for a few tenths of a percent, and a variant's time comes out of UPLOAD_RESERVE_MS.
OXIPNG_LEVEL = 1


def optimize(body: bytes, fmt: str) -> bytes:
    """``body`` (a FORMATS key ``fmt``) made smaller without changing a pixel; as it is for other formats,
    and when an optimizer fails or would make it larger (logged: the deliverable is not held up)."""
    try:
        if fmt == "jpeg":
            smaller = mozjpeg_lossless_optimization.optimize(body, copy=mozjpeg_lossless_optimization.COPY_MARKERS.ALL)
        elif fmt == "png":
            smaller = oxipng.optimize_from_memory(body, level=OXIPNG_LEVEL, strip=oxipng.StripChunks.none())
        else:
            return body
    except (ValueError, oxipng.PngError) as exc:
        logger.warning("deliverable not optimized", extra={"format": fmt, "error": str(exc)})
        return body
    return smaller if len(smaller) < len(body) else body
