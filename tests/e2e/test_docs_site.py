"""The docs site builds with --strict (broken links and anchors, pages missing from the nav, a generator that
fails), and the tables generated from the code are in the built pages."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from reframe_pipeline.domain.presets import PRESETS

from .conftest import clean_env

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("site")
    env = {**clean_env(), "NO_MKDOCS_2_WARNING": "1", "PYTHONPATH": os.environ.get("PYTHONPATH", "")}
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return out


def page(site: Path, name: str) -> str:
    return (site / name / "index.html").read_text() if name else (site / "index.html").read_text()


def test_every_page_of_docs_is_built_and_the_build_script_is_not_published(site: Path):
    pages = {path.stem for path in (ROOT / "docs").glob("*.md")} - {"index"}
    assert pages <= {path.name for path in site.iterdir() if path.is_dir()}
    assert not list(site.rglob("hooks.py"))


def test_the_home_page_is_the_readme_with_its_links_made_site_links(site: Path):
    home = page(site, "")
    assert "Never spend past the budget" in home
    assert 'href="uploads/#upload-order"' in home
    assert 'href="contributing/"' in home
    assert 'href="docs/' not in home


def test_the_presets_table_is_rendered_from_the_code(site: Path):
    html = page(site, "presets")
    for name, preset in PRESETS.items():
        assert f"<td>{name}</td>\n<td>{preset.size}</td>" in html, name


def test_the_resolutions_are_rendered_from_the_code(site: Path):
    html = page(site, "sidecar")
    assert "<td>512x1536 (0.33)</td>" in html and "<td>1536x512 (3.00)</td>" in html


def test_the_parameter_table_is_rendered(site: Path):
    html = page(site, "deploy")
    assert "<td><code>InputPrefix</code></td>" in html
    assert "<td><code>AlarmEmail</code></td>" in html


def test_the_demo_plan_is_rendered(site: Path):
    html = page(site, "demo")
    assert "<code>uploads/phone/rocket-phone.jpg</code>" in html
    assert "the demo makes 14 calls" in html


def test_contributing_is_in_the_site(site: Path):
    assert "make docs-build" in page(site, "contributing")
