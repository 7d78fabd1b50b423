"""What the command-line tests start from: the default settings, whatever the developer's shell sets, and a
valid sidecar file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reframe_pipeline.settings import Settings

SIDECAR = {"version": 1, "targets": [{"resolution": "1536x640"}, {"preset": "instagram-story"}]}


def clear_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in Settings.model_fields:
        monkeypatch.delenv(name.upper(), raising=False)


def sidecar_file(folder: Path) -> str:
    path = folder / "photo.jpg.reframe.json"
    path.write_text(json.dumps(SIDECAR))
    return str(path)
