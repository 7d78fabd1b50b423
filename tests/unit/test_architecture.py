"""The structure the architecture page describes: layers whose imports point inward (the application sees
plain options, never the settings), modules and functions small enough to read, and an error-code table
that lists every code the code can write."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "functions" / "reframe" / "reframe_pipeline"
PAGE = ROOT / "docs" / "architecture.md"


def imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return found


@pytest.mark.parametrize("layer", ["domain", "application"])
def test_inner_layers_import_no_adapter_and_no_aws_sdk(layer: str):
    offenders = {
        f"{path.name}: {module}"
        for path in (PACKAGE / layer).glob("*.py")
        for module in imports(path)
        if module.startswith(
            (
                "reframe_pipeline.adapters",
                "reframe_pipeline.composition",
                "reframe_pipeline.settings",
                "boto",
                "requests",
            )
        )
    }
    assert offenders == set()


MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 40
MAX_CLASS_LINES = 150


def test_every_module_is_small_enough_to_read_whole():
    sizes = {str(path.relative_to(PACKAGE)): len(path.read_text().splitlines()) for path in PACKAGE.rglob("*.py")}
    assert {name: lines for name, lines in sizes.items() if lines > MAX_MODULE_LINES} == {}


def longer_than(kinds: type | tuple[type, ...], most: int) -> dict[str, int]:
    return {
        f"{path.relative_to(PACKAGE)}: {node.name}": node.end_lineno - node.lineno + 1
        for path in PACKAGE.rglob("*.py")
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, kinds) and node.end_lineno is not None and node.end_lineno - node.lineno + 1 > most
    }


def test_every_function_is_small_enough_to_read_at_a_glance():
    assert longer_than((ast.FunctionDef, ast.AsyncFunctionDef), MAX_FUNCTION_LINES) == {}


def test_every_class_has_one_job_and_reads_in_one_sitting():
    assert longer_than(ast.ClassDef, MAX_CLASS_LINES) == {}


def test_the_domain_does_not_reach_the_application():
    offenders = {
        f"{path.name}: {module}"
        for path in (PACKAGE / "domain").glob("*.py")
        for module in imports(path)
        if module.startswith(("reframe_pipeline.application", "reframe_pipeline.settings", "socket"))
    }
    assert offenders == set()


def codes_in_code() -> set[str]:
    codes: set[str] = set()
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Assign) and [getattr(t, "id", None) for t in node.targets] == ["code"]:
                if isinstance(node.value, ast.Constant):
                    codes.add(node.value.value)
            elif isinstance(node, ast.keyword) and node.arg == "code":
                if isinstance(node.value, ast.Constant):
                    codes.add(node.value.value)
                elif isinstance(node.value, ast.JoinedStr):  # f"http_{status}"
                    codes.add("http_<status>")
    return codes


def test_every_error_code_is_in_the_architecture_page_and_nothing_else():
    documented = set(re.findall(r"^\| `([a-z_<>]+)` \|", PAGE.read_text(), re.M))
    assert documented == codes_in_code()


@pytest.mark.usefixtures("handler_env")
def test_resetting_the_handler_lets_its_thread_pools_go():
    import threading

    from reframe_pipeline import handler

    handler.reset()
    before = threading.active_count()
    for _ in range(3):
        list(handler.pipeline()._io.map(abs, range(20)))  # built, as by the first event, and its threads started
        handler.reset()
    assert threading.active_count() <= before + 1


def test_code_points_to_documents_in_the_repository_only():
    pattern = re.compile(r"design\ssection|facts\spage|design\.md", re.I)
    roots = [PACKAGE, ROOT / "tools", ROOT / "benchmarks"]
    offenders = [
        f"{p.relative_to(ROOT)}" for root in roots for p in root.rglob("*.py") if pattern.search(p.read_text())
    ]
    assert offenders == []
