"""The template passes the linters exactly as `make iac-check` runs them (tools from .venv-iac)."""

from __future__ import annotations

import re

from .conftest import TEMPLATE, iac_tool, run_tool


def test_cfn_lint() -> None:
    result = run_tool([iac_tool("cfn-lint"), TEMPLATE])
    assert result.returncode == 0, f"cfn-lint:\n{result.stdout}\n{result.stderr}"


def test_sam_validate_lint() -> None:
    result = run_tool([iac_tool("sam"), "validate", "--lint", "--template", TEMPLATE])
    assert result.returncode == 0, f"sam validate --lint:\n{result.stdout}\n{result.stderr}"
    assert "is a valid SAM Template" in result.stdout + result.stderr


def test_checkov() -> None:
    result = run_tool(
        [iac_tool("checkov"), "-f", TEMPLATE, "--framework", "cloudformation", "--quiet", "--compact",
         "--skip-download"],
        timeout=180,
    )  # fmt: skip
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"checkov:\n{output}"
    summary = re.search(r"Passed checks: (\d+), Failed checks: (\d+), Skipped checks: (\d+)", output)
    assert summary, f"no checkov summary in:\n{output}"
    passed, failed, _skipped = map(int, summary.groups())
    assert failed == 0 and passed > 0, output
