"""docs/observability.md's metric table names every metric the function emits, and no other."""

from __future__ import annotations

import re

from .conftest import ROOT
from .test_wiring import emitted_metrics

DOC = ROOT / "docs" / "observability.md"


def test_every_emitted_metric_is_described_and_nothing_else():
    table = DOC.read_text().split("| metric | meaning |", 1)[1].split("\n\n", 1)[0]
    documented = {name for row in table.splitlines()[2:] for name in re.findall(r"`(\w+)`", row.split(" | ")[0])}
    assert documented == emitted_metrics()
