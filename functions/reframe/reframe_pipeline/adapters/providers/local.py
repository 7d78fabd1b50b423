"""The local provider: reframes offline with the canvas-extension engine (free, deterministic)."""

from __future__ import annotations

import io

from PIL import Image, UnidentifiedImageError

from reframe_pipeline.application.values import ReframeRequest, ReframeResult
from reframe_pipeline.domain.imaging import encode
from reframe_pipeline.domain.local_engine import extend_canvas
from reframe_pipeline.domain.preparation import UnsupportedImageError


class LocalProvider:
    name = "local"

    def reframe(self, request: ReframeRequest) -> ReframeResult:
        request.meter.charge()  # free, but counted like any provider's attempt
        # The source arrives prepared (upright, a provider format) like for any provider.
        try:
            with Image.open(io.BytesIO(request.source.load())) as source:
                source.load()
                profile = source.info.get("icc_profile")  # the pixels keep the source's colour space
                result = extend_canvas(source, request.resolution)
        except (UnidentifiedImageError, OSError, SyntaxError) as exc:
            raise UnsupportedImageError(f"the source image does not decode: {exc}") from None
        body = encode(result, "png", icc_profile=profile)
        return ReframeResult(body=body, content_type="image/png", seed=request.params.seed)
