"""Pages that describe the samples stay true: the demo's plan (which docs/demo.md renders at build time) counts
every target at its price, every sample image is uploaded by the demo, licensed and described; and the README
stays a front page that leads to every page of docs/; docs/settings.md describes every setting."""

from __future__ import annotations

import re
from pathlib import Path

from reframe_cli.cli import main
from reframe_cli.demo import planned
from reframe_cli.samples import IMAGES, SIDECARS, UPLOADS
from reframe_pipeline.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
SAMPLES = sorted(path.name for path in IMAGES.iterdir() if path.suffix in (".png", ".jpg"))


def test_the_plan_counts_every_target_of_every_upload_at_its_price():
    text = planned(Settings.from_env({}))
    rows = [line for line in text.splitlines() if line.startswith("| ")][2:]
    assert len(rows) == 14
    assert sum(row.startswith("| `uploads/") for row in rows) == len(UPLOADS)
    assert "| `uploads/phone/rocket-phone.jpg` | the folder default `uploads/_reframe.json` |" in text
    # 3 TURBO at 0.037 and 11 DEFAULT at 0.075 (pricing.DEFAULT_PRICES).
    assert text.endswith(
        "the demo makes 14 calls (11 DEFAULT, 3 TURBO), about $0.94 at the `segmind` prices of the price table.\n"
    )


def test_demo_plan_prints_it(capsys, monkeypatch):
    for name in Settings.model_fields:
        monkeypatch.delenv(name.upper(), raising=False)
    assert main(["demo", "--plan"]) == 0
    assert capsys.readouterr().out == planned(Settings.from_env({}))


def test_every_sample_image_is_uploaded_licensed_and_described():
    assert sorted(UPLOADS) == SAMPLES
    licences = (IMAGES / "LICENSES.md").read_text()
    sidecars_readme = (SIDECARS / "README.md").read_text()
    for name in SAMPLES:
        assert f"| {name} |" in licences, name
        assert f"`{name}`" in sidecars_readme, name
    assert "Five small photographs" in licences and len(SAMPLES) == 5


def test_every_example_sidecar_is_described():
    readme = (SIDECARS / "README.md").read_text()
    for path in SIDECARS.rglob("*.json"):
        assert f"| `{path.relative_to(SIDECARS).as_posix()}` |" in readme, path


def test_the_readme_is_a_front_page_that_leads_to_every_page():
    text = README.read_text()
    assert len(text.encode()) <= 12 * 1024
    linked = set(re.findall(r"\]\(docs/([a-z-]+\.md)", text))
    pages = {path.name for path in (ROOT / "docs").glob("*.md")} - {"index.md", "contributing.md"}
    assert pages <= linked, f"pages the README's index does not list: {sorted(pages - linked)}"
    assert "](CONTRIBUTING.md)" in text


def test_the_readme_states_each_promise_and_the_upload_order():
    text = README.read_text()
    for promise in (
        "Pay once per variant",
        "Never lose a paid result",
        "Never spend past the budget",
        "Variants match their current source and sidecar",
        "No orphans",
        "Never lose an upload silently",
    ):
        assert f"**{promise}:**" in text, promise
    assert "**Upload order does not matter" in text and "`SIDECAR_WAIT_S`" in text


def test_every_setting_is_in_the_settings_page():
    page = (ROOT / "docs" / "settings.md").read_text()
    table = page.split("| name | meaning | default |", 1)[1].split("\n\n", 1)[0]
    documented = {name for row in table.splitlines()[2:] for name in re.findall(r"`([A-Z0-9_]+)`", row.split(" | ")[0])}
    missing = {name.upper() for name in Settings.model_fields} - documented
    assert not missing, f"settings missing from docs/settings.md: {sorted(missing)}"
