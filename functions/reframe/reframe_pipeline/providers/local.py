"""The local provider: reframes offline with the canvas-extension engine (free, deterministic)."""

from __future__ import annotations

import io

from PIL import Image, ImageOps

from ..imaging import encode
from ..local_engine import extend_canvas
from ..ports import ReframeRequest, ReframeResult


class LocalProvider:
    name = "local"

    def reframe(self, request: ReframeRequest) -> ReframeResult:
        with Image.open(io.BytesIO(request.source.load())) as source:
            upright = ImageOps.exif_transpose(source)
            result = extend_canvas(upright, request.resolution)
        return ReframeResult(body=encode(result, "png"), content_type="image/png", seed=request.params.seed)
