"""Segmind's reframe API: the synchronous v1 call, answering the image, and the asynchronous v2 one, answering
a request id whose status and output are then polled.

- ``POST /v1/ideogram-3-reframe``: ``x-api-key``; JSON body; answers the image bytes (or JSON
  ``{"image": base64}`` / ``{"image": url}`` as ``response_format`` says), JPEG unless ``image_format`` says PNG.
- ``POST /v2/ideogram-3-reframe``: as v1, but it validates, fetches the source, bills, and answers at once
  ``{"request_id", "status": "QUEUED", "poll_url", "status_url", "response_url"}`` while the job runs in the
  background. ``GET /v2/requests/<id>/status`` answers ``{"request_id", "status"}`` (QUEUED, PROCESSING,
  COMPLETED; FAILED with 422 and ``error``); ``GET /v2/requests/<id>`` the same, plus ``"output": "<image
  URL>", "metrics": {...}`` once COMPLETED. Both take the next fault like any call, and answer 404 once the
  job ended more than ``result_ttl_s`` ago. With ``serve_v2`` off the POST answers 404 "model not found".
"""

from __future__ import annotations

import base64
import json
import re
import threading
import traceback
from typing import Any

from PIL import Image

from . import api
from .replies import Exchange, Reply, error_reply, json_reply
from .state import SPOILING_FAULTS, Call, EmulatorState, Job

PATH = "/v1/ideogram-3-reframe"
V2_PATH = "/v2/ideogram-3-reframe"
V2_REQUESTS_PATH = "/v2/requests/"
V2_REQUEST = re.compile(re.escape(V2_REQUESTS_PATH) + r"([^/]+)(/status)?")


def reframe(exchange: Exchange, body: bytes, call: Call) -> Reply:
    """The v1 call: the image in the answer."""
    state = exchange.state
    request, source = _request_and_source(state, body, call)
    _image, result = api.generate(state, source, call)
    if call.fault == "unsafe":
        return error_reply(422, "the image did not pass the safety check")
    if call.fault in SPOILING_FAULTS:
        return Reply(200, result.body, result.content_type)
    headers = _charge(state, request, call)
    fmt = state.config.response_format
    if fmt == "image":
        return Reply(200, result.body, result.content_type, headers, billed=1)
    if fmt == "json-base64":
        document = {"image": base64.b64encode(result.body).decode()}
    else:
        document = {"image": exchange.result_url(exchange.keep(call, result))}
    return Reply(200, json.dumps(document).encode(), headers=headers, billed=1)


def submit(exchange: Exchange, body: bytes, call: Call) -> Reply:
    """The v2 call: the job queued, its request id answered at once."""
    state = exchange.state
    request, source = _request_and_source(state, body, call)
    state.add_job(call.request_id)
    threading.Thread(target=_run_job, args=(exchange, source, call), daemon=True).start()
    status_url = f"{exchange.base_url}{V2_REQUESTS_PATH}{call.request_id}/status"
    document = {
        "request_id": call.request_id,
        "status": "QUEUED",
        "poll_url": status_url,
        "status_url": status_url,
        "response_url": status_url.removesuffix("/status"),
    }
    # Billed when accepted, whatever happens to the job (a paid request is only recoverable by its id),
    # except a job whose output comes out broken: like a broken v1 answer, it carries no usable image.
    billed = 0 if call.fault in SPOILING_FAULTS else 1
    return Reply(200, json.dumps(document).encode(), headers=_charge(state, request, call), billed=billed)


def poll(exchange: Exchange, request_id: str, status_only: bool, call: Call) -> Reply:
    """A v2 job's status, or its status and output."""
    call.request_id = request_id
    job = exchange.state.get_job(request_id)
    if job is None:
        return error_reply(404, "no such request, or it has expired")
    return _job_reply(request_id, job, status_only)


def _request_and_source(state: EmulatorState, body: bytes, call: Call) -> tuple[api.SegmindRequest, Image.Image]:
    """The request (v1 or v2) checked, its source and style references fetched and checked."""
    request = api.parse_segmind(body)
    call.resolution, call.rendering_speed = request.resolution, request.rendering_speed
    call.seed = request.seed if request.seed is not None else api.random_seed(100, 999_999)
    config = state.config
    source = api.check_source(api.fetch(request.image, "image", config), state, call)
    call.source_size = source.size
    for index, url in enumerate(request.style_reference_images or []):
        field_name = f"style_reference_images[{index}]"
        api.check_image(api.fetch(url, field_name, config), field_name)
        call.style_references += 1
    return request, source


def _charge(state: EmulatorState, request: api.SegmindRequest, call: Call) -> dict[str, str]:
    """Spend a generation's credits; Segmind's headers telling so."""
    credits = api.CREDITS[request.rendering_speed]
    return {"x-credits-consumed": str(credits), "x-remaining-credits": str(state.spend(call, credits))}


def _run_job(exchange: Exchange, source: Image.Image, call: Call) -> None:
    """A v2 job, in its own thread: generate, then end with the output's URL or the failure."""
    state = exchange.state
    state.start_job(call.request_id)
    try:
        _image, result = api.generate(state, source, call)
        if call.fault == "unsafe":
            state.end_job(call.request_id, error="the image did not pass the safety check")
        elif call.fault == "v2-fail":
            state.end_job(call.request_id, error="the generation failed (injected)")
        else:
            name = exchange.keep(call, result)
            state.end_job(call.request_id, output=exchange.result_url(name))
    except Exception as exc:
        traceback.print_exc()  # an emulator bug: the job fails as a provider's would
        state.end_job(call.request_id, error=f"emulator error: {type(exc).__name__}: {exc}")


def _job_reply(request_id: str, job: Job, status_only: bool) -> Reply:
    document: dict[str, Any] = {"request_id": request_id, "status": job.status}
    if job.status == "FAILED":
        return json_reply(422, {**document, "error": job.error})
    if job.status == "COMPLETED" and not status_only:
        document |= {"output": job.output, "metrics": job.metrics()}
    return json_reply(200, document)
