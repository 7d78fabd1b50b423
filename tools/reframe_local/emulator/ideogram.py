"""Ideogram's own reframe API.

``POST /v1/ideogram-v3/reframe``: ``Api-Key``; multipart form (style codes of 8 hex characters, style
references at most 10 MB in total); answers ``{"created", "data": [{"url", "resolution", "seed",
"is_image_safe", "prompt"}]}``, ``resolution`` being the served image's, each image at a result URL.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from . import api
from .replies import Exchange, Reply
from .state import SPOILING_FAULTS, Call

PATH = "/v1/ideogram-v3/reframe"
_MAX_SEED = 2_147_483_647


def reframe(exchange: Exchange, body: bytes, call: Call) -> Reply:
    state = exchange.state
    form = api.parse_ideogram(exchange.headers.get("Content-Type", ""), body)
    request = form.request
    call.resolution, call.rendering_speed = request.resolution, request.rendering_speed
    call.seed = request.seed if request.seed is not None else api.random_seed(0, _MAX_SEED)
    source = api.check_source(form.image, state, call)
    call.source_size = source.size
    for index, reference in enumerate(form.style_references):
        api.check_image(reference, f"style_reference_images[{index}]")
        call.style_references += 1
    image, result = api.generate(state, source, call)
    safe = call.fault != "unsafe"
    data = []
    for index in range(request.num_images):
        item: dict[str, Any] = {
            "resolution": f"{image.width}x{image.height}",  # what is served ("wrong-size" included)
            "seed": (call.seed + index) % (_MAX_SEED + 1),
            "is_image_safe": safe,
            "prompt": f"Reframed to {request.resolution}",
        }
        if safe:
            item["url"] = exchange.result_url(exchange.keep(call, result))
        data.append(item)
    billed = 0 if call.fault in SPOILING_FAULTS else request.num_images
    created = datetime.now(UTC).isoformat(timespec="seconds")
    return Reply(200, json.dumps({"created": created, "data": data}).encode(), billed=billed)
