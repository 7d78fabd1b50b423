"""An object event (an upload or a delete, as the inbound adapter reads it from AWS) and what each key is to
the pipeline: an image, a sidecar, a folder default, an output, or outside the input prefix."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Literal

SIDECAR_SUFFIX = ".reframe.json"
FOLDER_SIDECAR = "_reframe.json"
MANIFEST_NAME = "manifest.json"


@dataclass(frozen=True)
class ObjectEvent:
    bucket: str
    key: str
    action: Literal["created", "removed"]
    etag: str | None = None


class KeyKind(Enum):
    IMAGE = "image"
    OBJECT_SIDECAR = "object-sidecar"
    FOLDER_SIDECAR = "folder-sidecar"
    OUTPUT = "output"
    OUTSIDE_INPUT = "outside-input"


def classify(key: str, input_prefix: str, output_prefix: str) -> KeyKind:
    """What a key is. Outputs are checked first so nothing the pipeline writes can trigger it again."""
    name = key.rsplit("/", 1)[-1]
    if key.startswith(output_prefix) or name == MANIFEST_NAME:
        return KeyKind.OUTPUT
    if not key.startswith(input_prefix) or key.endswith("/"):
        return KeyKind.OUTSIDE_INPUT
    if name == FOLDER_SIDECAR:
        return KeyKind.FOLDER_SIDECAR
    if key.endswith(SIDECAR_SUFFIX):
        return KeyKind.OBJECT_SIDECAR
    return KeyKind.IMAGE
