"""docs/deploy.md's parameter table lists every parameter of template.yaml with its default."""

from __future__ import annotations

import re
from typing import Any

from .conftest import ROOT

DOC = ROOT / "docs" / "deploy.md"


def documented() -> dict[str, str]:
    """Parameter -> default, from the table's rows such as "| `A` / `B` | `x` / 30 | ... |"."""
    table = DOC.read_text().split("| parameter | default | what it does |", 1)[1].split("\n\n", 1)[0]
    found = {}
    for row in table.strip().splitlines()[1:]:
        names_cell, defaults_cell = row.split(" | ")[:2]
        names = re.findall(r"`(\w+)`", names_cell)
        defaults = [cell.strip().strip("`") for cell in defaults_cell.split(" / ")]
        assert len(names) == len(defaults), row
        found.update(zip(names, defaults, strict=True))
    return found


def test_every_template_parameter_is_documented_with_its_default(template: dict[str, Any]):
    parameters = template["Parameters"]
    table = documented()
    assert sorted(table) == sorted(parameters), "docs/deploy.md's parameter table and template.yaml differ"
    for name, spec in parameters.items():
        default = str(spec.get("Default", ""))
        assert table[name] == (default or "empty"), name
