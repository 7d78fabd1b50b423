"""The benchmark suite at tiny sizes: the harness runs end to end and reports all eleven figures (no timing
asserts: speed goals stay out of the tests)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from .conftest import clean_env

ROOT = Path(__file__).resolve().parents[2]


def test_bench_smoke(tmp_path: Path):
    report = tmp_path / "benchmarks.md"
    run = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--smoke", "--output", str(report)],
        check=False,
        cwd=ROOT,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=300,  # about 30 s alone; more when the suite runs beside it on 2 cores
    )
    assert run.returncode == 0, run.stderr[-3000:]
    figures = range(1, 12)
    printed = [line.split(" ", 1)[0] for line in run.stdout.splitlines() if re.match(r"\d+\. ", line)]
    assert printed == [f"{n}." for n in figures]
    text = report.read_text()
    assert "smoke run" in text
    for number in figures:
        assert f"| {number}. " in text
    # The scale figures ran their instances to the end: every variant made, nothing dead-lettered, each
    # instance stopped cleanly and reported its memory.
    for number in (7, 8, 9):
        assert re.search(rf"^{number}\. .*lost 0\b", run.stdout, re.MULTILINE), run.stdout
    assert re.search(r"^9\. .*queue empty; peak RSS per instance [1-9]\d* MB", run.stdout, re.MULTILINE)
    assert "cores" in text
    assert "Python 3." in text


def test_features_bench_smoke(tmp_path: Path):
    report = tmp_path / "benchmarks.md"
    report.write_text("# Benchmarks\n\n<!-- features:start -->\nan older section\n<!-- features:end -->\nafter\n")
    run = subprocess.run(
        [sys.executable, "-m", "benchmarks.features", "--runs", "1", "--baseline", "HEAD", "--output", str(report)],
        check=False,
        cwd=ROOT,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    text = report.read_text()
    # Its section replaced in place; each run's manifest was checked by the bench itself (created; signed or not).
    assert text.startswith("# Benchmarks\n\n<!-- features:start -->\n## Cold start with notices and C2PA signing")
    assert text.endswith("<!-- features:end -->\nafter\n") and "an older section" not in text
    rows = [line.split(" | ")[0] for line in text.splitlines() if line.startswith("| ")]
    assert rows[2:] == ["| both off", "| notices on", "| signing on", "| both on", "| revision HEAD, both off"]
    assert "With both off, feature modules loaded: none" in text
