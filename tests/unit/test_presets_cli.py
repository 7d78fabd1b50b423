import json

from reframe_cli import presets_cmd
from reframe_cli.cli import main
from reframe_pipeline.domain.planning import plan
from reframe_pipeline.domain.presets import PRESETS
from reframe_pipeline.domain.sidecar import parse_sidecar

# The settings' defaults (DEFAULT_RENDERING_SPEED, STYLE_PREFIX).
PLAN = {"default_speed": "DEFAULT", "style_prefix": "styles/"}


def planned_resolution(preset: str) -> str:
    raw = json.dumps({"version": 1, "targets": [{"preset": preset}]}).encode()
    [variant] = plan(parse_sidecar(raw, max_bytes=65536, max_targets=20), provider="local", **PLAN)
    return str(variant.resolution)


def test_presets_lists_every_preset_with_the_resolution_the_planner_uses(capsys):
    assert main(["presets"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:2] == ["preset", "pixels"]
    by_name = {line.split()[0]: line for line in lines[2:]}
    assert list(by_name) == list(PRESETS)
    for name, preset in PRESETS.items():
        cells = by_name[name].split()
        assert cells[1] == str(preset.size)
        assert preset.label in by_name[name]
        assert planned_resolution(name) in cells


def test_presets_beyond_three_to_one_say_they_are_cropped(capsys):
    main(["presets"])
    lines = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()[2:]}
    assert lines["linkedin-banner"].endswith("wider than 3:1: top and bottom are cropped")
    assert "1536x512" in lines["linkedin-banner"]
    # Exactly 3:1 fits the catalogue: no note.
    assert lines["x-header"].rstrip().endswith("1536x512")
    assert "cropped" not in lines["instagram-post"]


def test_markdown_output_is_the_docs_page(capsys):
    assert main(["presets", "--markdown"]) == 0
    out = capsys.readouterr().out
    assert out == presets_cmd.markdown()
    assert "| linkedin-banner | 1584x396 | LinkedIn profile banner (4:1) | 1536x512 | wider than 3:1" in out
