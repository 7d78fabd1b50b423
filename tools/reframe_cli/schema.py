"""``reframe schema``: the JSON Schema of the sidecar (``--notice``: of a notice's detail), generated
from the pipeline's pydantic models.

``reframe schema > schemas/sidecar.schema.json`` and ``reframe schema --notice >
schemas/notice.schema.json`` regenerate the committed copies. The model stays the
authority: checks written as validators (the 69 resolutions, preset names, one target kind, style
references) are not expressed in the schema, so an editor catches less than the pipeline does.
"""

from __future__ import annotations

import json
from typing import Any, TextIO

from pydantic import BaseModel

from reframe_pipeline.domain.notices import NoticeDetail
from reframe_pipeline.domain.sidecar import Sidecar

SCHEMA_ID = "urn:reframe-pipeline:schema:sidecar:1"
TITLE = "Reframe Pipeline sidecar, format version 1"
DESCRIPTION = (
    "How to reframe an image: put it next to the image as IMAGE.reframe.json, or as _reframe.json "
    "for every image in a folder and below. See docs/sidecar.md."
)

NOTICE = (
    "urn:reframe-pipeline:schema:notice:2",
    "Reframe Pipeline notice detail, schema version 2",
    "The detail of the EventBridge events 'Reframe Variants Ready' and 'Reframe Variants Removed' "
    "(source reframe.pipeline), and the data of the webhook. See docs/notices.md.",
)


def _schema(model: type[BaseModel], schema_id: str, title: str, description: str) -> dict[str, Any]:
    # A sidecar is read (validation), a notice is written (serialization: every field is always there).
    generated = model.model_json_schema(mode="serialization" if model is NoticeDetail else "validation")
    generated.pop("title", None)
    generated.pop("description", None)  # the model's docstring: the schema has its own
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": schema_id,
        "title": title,
        "description": description,
        **generated,
    }


def sidecar_schema() -> dict[str, Any]:
    return _schema(Sidecar, SCHEMA_ID, TITLE, DESCRIPTION)


def notice_schema() -> dict[str, Any]:
    return _schema(NoticeDetail, *NOTICE)


def render(notice: bool = False) -> str:
    return json.dumps(notice_schema() if notice else sidecar_schema(), indent=2, ensure_ascii=False) + "\n"


def run(out: TextIO, notice: bool = False) -> int:
    out.write(render(notice))
    return 0
