"""Reading marks back with exiftool, a reader this project did not write (Debian: libimage-exiftool-perl;
.ci/run installs it when run as root)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

EXIFTOOL = shutil.which("exiftool")
needs_exiftool = pytest.mark.skipif(
    EXIFTOOL is None,
    reason="exiftool is not installed: provenance marks are read back with it "
    "(apt-get install libimage-exiftool-perl; .ci/run installs it when run as root)",
)


def read_tags(body: bytes, tmp_path: Path) -> dict[str, Any]:
    """Every tag exiftool finds, by group and name (``XMP-iptcExt:DigitalSourceType``)."""
    path = tmp_path / "image"
    path.write_bytes(body)
    assert EXIFTOOL is not None
    out = subprocess.run([EXIFTOOL, "-j", "-G1", "-a", str(path)], capture_output=True, check=True, text=True).stdout
    tags: dict[str, Any] = json.loads(out)[0]
    return tags
