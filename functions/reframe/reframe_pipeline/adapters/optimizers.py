"""Lossless optimizers of deliverables (docs/outputs.md, "Optimized bytes"): JPEG through mozjpeg's
(progressive, optimized Huffman tables), PNG through oxipng. The pixels do not change, and every
marker and chunk stays: the XMP provenance, the colour profile."""

from __future__ import annotations

import mozjpeg_lossless_optimization
import oxipng

from reframe_pipeline.observability import logger

# oxipng on the sample photos at 1344x704: level 1 saves 5.3 % of the bytes for 0.56 s of CPU per megapixel,
# level 2 5.6 % for 1.1 s, level 4 6.3 % for 3.8 s (docs/benchmarks.md, "Delivery", has level 1 over three
# sizes). Past 1 each step doubles the CPU for a few tenths of a percent, out of UPLOAD_RESERVE_MS.
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
