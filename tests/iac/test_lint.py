"""The template passes the linters exactly as `make iac-check` runs them (tools from .venv-iac)."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest

from .conftest import TEMPLATE, iac_tool, run_tool


def test_cfn_lint() -> None:
    result = run_tool([iac_tool("cfn-lint"), TEMPLATE])
    assert result.returncode == 0, f"cfn-lint:\n{result.stdout}\n{result.stderr}"


def test_sam_validate_lint() -> None:
    result = run_tool([iac_tool("sam"), "validate", "--lint", "--template", TEMPLATE])
    assert result.returncode == 0, f"sam validate --lint:\n{result.stdout}\n{result.stderr}"
    assert "is a valid SAM Template" in result.stdout + result.stderr


def _checkov(template: Path) -> None:
    result = run_tool(
        [iac_tool("checkov"), "-f", template, "--framework", "cloudformation", "--quiet", "--compact",
         "--skip-download"],
        timeout=180,
    )  # fmt: skip
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"checkov:\n{output}"
    summary = re.search(r"Passed checks: (\d+), Failed checks: (\d+), Skipped checks: (\d+)", output)
    assert summary, f"no checkov summary in:\n{output}"
    passed, failed, _skipped = map(int, summary.groups())
    assert failed == 0 and passed > 0, output


def test_checkov() -> None:
    _checkov(TEMPLATE)


# checkov drops the resources whose condition is false with the parameters' defaults: the CDN and the rule
# of an existing bucket are checked with defaults that turn them on.
@pytest.mark.parametrize(
    "defaults",
    [{"CreateCdn": "true"}, {"CreateCdn": "true", "SourceBucketName": "photos-site"}],
    ids=["cdn-on-the-created-bucket", "cdn-and-an-existing-bucket"],
)
def test_checkov_in_the_other_modes(template: dict[str, Any], defaults: dict[str, str], tmp_path: Path) -> None:
    variant = copy.deepcopy(template)
    for name, value in defaults.items():
        variant["Parameters"][name]["Default"] = value
    path = tmp_path / "template.json"
    path.write_text(json.dumps(variant))
    _checkov(path)
