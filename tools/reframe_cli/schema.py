"""``reframe schema``: the JSON Schema of the sidecar, generated from the pipeline's pydantic model.

``reframe schema > schemas/sidecar.schema.json`` regenerates the committed copy. The model stays the
authority: checks written as validators (the 69 resolutions, preset names, one target kind, style
references) are not expressed in the schema, so an editor catches less than the pipeline does.
"""

from __future__ import annotations

import json
from typing import Any, TextIO

from reframe_pipeline.domain.sidecar import Sidecar

SCHEMA_ID = "urn:reframe-pipeline:schema:sidecar:1"
TITLE = "Reframe Pipeline sidecar, format version 1"
DESCRIPTION = (
    "How to reframe an image: put it next to the image as IMAGE.reframe.json, or as _reframe.json "
    "for every image in a folder and below. See docs/sidecar.md."
)


def sidecar_schema() -> dict[str, Any]:
    generated = Sidecar.model_json_schema()
    generated.pop("title", None)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": TITLE,
        "description": DESCRIPTION,
        **generated,
    }


def render() -> str:
    return json.dumps(sidecar_schema(), indent=2, ensure_ascii=False) + "\n"


def run(out: TextIO) -> int:
    out.write(render())
    return 0
