"""Where an image's configuration comes from (docs/sidecar.md): first found wins, no merging."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from reframe_pipeline.application.ports import Storage
from reframe_pipeline.domain.events import FOLDER_SIDECAR, SIDECAR_SUFFIX


@dataclass(frozen=True)
class FoundConfig:
    origin: Literal["object", "folder", "default"]
    key: str | None
    raw: bytes


def candidate_keys(image_key: str, input_prefix: str) -> list[tuple[Literal["object", "folder"], str]]:
    """The object's own sidecar, then each folder's ``_reframe.json`` from nearest to the input root."""
    found: list[tuple[Literal["object", "folder"], str]] = [("object", image_key + SIDECAR_SUFFIX)]
    folders = image_key[len(input_prefix) :].split("/")[:-1]
    for depth in range(len(folders), -1, -1):
        folder = "/".join(folders[:depth])
        found.append(("folder", input_prefix + (f"{folder}/" if folder else "") + FOLDER_SIDECAR))
    return found


def find_config(
    storage: Storage, image_key: str, input_prefix: str, default: str | None, max_bytes: int
) -> FoundConfig | None:
    for origin, key in candidate_keys(image_key, input_prefix):
        if (found := _read(storage, origin, key, max_bytes)) is not None:
            return found
    if default is not None:
        return FoundConfig("default", None, default.encode())
    return None


def own_sidecar(storage: Storage, image_key: str, max_bytes: int) -> FoundConfig | None:
    """The image's own sidecar as it is now, if it has one."""
    return _read(storage, "object", image_key + SIDECAR_SUFFIX, max_bytes)


def _read(storage: Storage, origin: Literal["object", "folder"], key: str, max_bytes: int) -> FoundConfig | None:
    try:
        # One byte over the limit is enough to tell that a sidecar is too large.
        return FoundConfig(origin, key, storage.read(key, first_bytes=max_bytes + 1))
    except FileNotFoundError:
        return None
