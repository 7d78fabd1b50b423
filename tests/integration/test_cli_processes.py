"""The `reframe` command as a separate process: in a shell pipe whose reader stops early, and run as a module
(``python -m reframe_cli.cli``), it still says one line and exits with the right status."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from reframe_cli.cli import CANNOT_RUN

from ..cli_settings import clear_settings, sidecar_file


@pytest.fixture(autouse=True)
def default_settings(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """The defaults, whatever the developer's shell sets."""
    clear_settings(monkeypatch)
    return monkeypatch


@pytest.fixture
def sidecar(tmp_path: Path) -> str:
    return sidecar_file(tmp_path)


def test_validate_into_a_reader_that_stops_early_is_not_an_error(sidecar):
    # `reframe validate F | head -1`: the reader closes the pipe after the first line.
    command = f"{sys.executable} -m reframe_cli.cli validate {sidecar} | head -1; exit ${{PIPESTATUS[0]}}"
    result = subprocess.run(["bash", "-c", command], capture_output=True, text=True, timeout=60, check=False)
    assert result.stdout.startswith(f"{sidecar}: 2 targets")
    assert result.stderr == ""
    assert result.returncode == 0


def test_the_command_run_as_a_module_says_it_in_one_line_too():
    # `python -m reframe_cli.cli` runs cli.py as __main__: the errors other modules raise are still recognised.
    result = subprocess.run(
        [sys.executable, "-m", "reframe_cli.cli", "backfill", "http://bucket/", "--dry-run"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (result.returncode, result.stdout) == (CANNOT_RUN, "")
    assert (
        result.stderr
        == "reframe backfill: 'http://bucket/' is not an S3 location: give s3://BUCKET or s3://BUCKET/PREFIX\n"
    )
