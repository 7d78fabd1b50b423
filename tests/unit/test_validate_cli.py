import json

import pytest

from reframe_cli.cli import main

DESIGN_EXAMPLE = {
    "version": 1,
    "targets": [
        {"resolution": "1536x640"},
        {"aspect_ratio": "9:16"},
        {"size": "1200x628", "name": "og"},
        {"resolution": "1024x1024", "rendering_speed": "QUALITY", "seed": 4343},
        {"preset": "linkedin-banner"},
    ],
    "rendering_speed": "DEFAULT",
    "seed": 4242,
    "output": {"format": "jpeg", "quality": 80},
}


@pytest.fixture(autouse=True)
def settings_env(monkeypatch):
    """Only what each test sets: a developer's shell must not change the figures."""
    for name in (
        "REFRAME_PROVIDER",
        "PRICE_TABLE",
        "MAX_TARGETS_PER_OBJECT",
        "MAX_SIDECAR_BYTES",
        "OUTPUT_KEY_TEMPLATE",
    ):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def write(tmp_path, document):
    path = tmp_path / "photo.jpg.reframe.json"
    path.write_text(document if isinstance(document, str) else json.dumps(document))
    return str(path)


def rows(out):
    """The targets' and the cost table's rows by their first word (the deliverables' table left out)."""
    head, _, rest = out.partition(" deliverable(s):")
    tables = head + rest.partition("\n\n")[2]
    return {line.split()[0]: line.split() for line in tables.splitlines() if line.strip()}


def test_a_good_file_prints_each_target_and_the_total(tmp_path, capsys):
    assert main(["validate", write(tmp_path, DESIGN_EXAMPLE)]) == 0
    out = capsys.readouterr().out
    table = rows(out)
    assert "5 targets, provider segmind" in out
    assert table["1536x640"] == [
        "1536x640",
        "resolution",
        "1536x640",
        "1536x640",
        "1536x640",
        "DEFAULT",
        "4242",
        "0.075",
    ]
    assert table["736x1312"][1:5] == ["aspect_ratio", "9:16", "736x1312", "736x1312"]
    assert table["og"][1:5] == ["size", "1200x628", "1344x704", "1200x628"]
    assert table["1024x1024"][5:] == ["QUALITY", "4343", "0.113"]
    assert table["linkedin-banner"][1:5] == ["preset", "linkedin-banner", "1536x512", "1584x396"]
    assert table["total"] == ["total", "0.413"]  # 4 x 0.075 + 0.113
    assert "output: jpeg, quality 80" in out
    # Per provider and speed, the one in use marked.
    assert table["segmind"] == ["segmind", "*", "0.000", "0.300", "0.113", "0.413"]
    assert table["ideogram"][-1] == "0.330"
    assert table["local"][-1] == "0.000"


def test_costs_follow_the_provider_and_the_price_table(tmp_path, capsys, settings_env):
    settings_env.setenv("REFRAME_PROVIDER", "local")
    settings_env.setenv("PRICE_TABLE", json.dumps({"segmind": {"DEFAULT": 0.5}}))
    assert main(["validate", write(tmp_path, DESIGN_EXAMPLE)]) == 0
    table = rows(capsys.readouterr().out)
    assert table["total"] == ["total", "0.000"]
    assert table["local"][:2] == ["local", "*"]
    assert table["segmind"][-1] == "2.113"  # 4 x 0.5 + 0.113


@pytest.mark.parametrize(
    ("document", "fragment"),
    [
        ({"version": 1, "targets": [{"resolution": "1x1"}]}, "targets[0].resolution: '1x1' is not one of the 69"),
        ({"version": 1, "targets": [{"size": "1200x628"}], "colour": 1}, "colour: Extra inputs are not permitted"),
        ({"version": 2, "targets": [{"size": "1200x628"}]}, "version:"),
        (
            {"version": 1, "targets": [{"preset": "instagram-post"}, {"size": "1080x1080", "name": "instagram-post"}]},
            "targets[1].name: 'instagram-post' is produced twice",
        ),
        (
            {"version": 1, "targets": [{"size": "1200x628"}], "style_codes": ["Modern"]},
            "style_codes[0]: 'Modern' is not a style code: Ideogram's are 8 hexadecimal characters",
        ),
        (
            {"version": 1, "targets": [{"size": "1200x628", "style_codes": ["5A3F09C1", "5A3F09C1F"]}]},
            "targets[0].style_codes[1]: '5A3F09C1F' is not a style code",
        ),
        ("{not json", "not valid JSON"),
    ],
)
def test_a_bad_file_names_the_field_and_exits_1(tmp_path, capsys, document, fragment):
    path = write(tmp_path, document)
    assert main(["validate", path]) == 1
    captured = capsys.readouterr()
    assert fragment in captured.err
    assert captured.err.startswith(f"{path}: invalid sidecar: ")
    assert captured.out == ""


def test_the_deployment_limits_apply(tmp_path, capsys, settings_env):
    settings_env.setenv("MAX_TARGETS_PER_OBJECT", "2")
    assert main(["validate", write(tmp_path, DESIGN_EXAMPLE)]) == 1
    assert "targets: 5 targets, over the limit of 2" in capsys.readouterr().err


@pytest.mark.parametrize("name", ["nope.json", "."])
def test_a_file_that_cannot_be_read_exits_2(tmp_path, capsys, name):
    """0 valid, 1 invalid, 2 could not run: a missing or unreadable file is not an invalid sidecar."""
    path = tmp_path / name
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"{path}: cannot read: ") and err.count("\n") == 1


def test_each_mistake_is_on_its_own_line_with_did_you_mean_for_a_near_miss(tmp_path, capsys):
    document = {
        "version": 1,
        "targets": [{"preset": "instagram-storie"}, {"resolution": "1536x64", "rendering_speed": "TURB"}],
        "colour_palette": {"name": "EMBER"},
    }
    path = write(tmp_path, document)
    assert main(["validate", path]) == 1
    lines = capsys.readouterr().err.splitlines()
    assert lines[0] == f"{path}: invalid sidecar, 4 mistakes:"
    assert sorted(lines[1:]) == [
        "  colour_palette: Extra inputs are not permitted (did you mean 'color_palette'?)",
        "  targets[0].preset: unknown preset 'instagram-storie' (did you mean 'instagram-story'?); known: email-header,"
        " facebook-cover, facebook-link, instagram-landscape, instagram-portrait … 13 more (see `reframe presets`)",
        "  targets[1].rendering_speed: Input should be 'TURBO', 'DEFAULT' or 'QUALITY' (did you mean 'TURBO'?)",
        "  targets[1].resolution: '1536x64' is not one of the 69 allowed resolutions (listed in docs/sidecar.md)"
        " (did you mean '1536x640'?)",
    ]


def test_a_far_miss_gets_no_guess_and_the_choices_do_not_flood_the_line(tmp_path, capsys):
    path = write(tmp_path, {"version": 1, "targets": [{"preset": "zzzz"}]})
    assert main(["validate", path]) == 1
    err = capsys.readouterr().err
    assert "did you mean" not in err and err.count("\n") == 1
    assert err.endswith("instagram-portrait … 13 more (see `reframe presets`)\n")
    assert len(err) - len(path) < 200  # all 18 presets would be 290 characters


def test_targets_sharing_a_generation_are_priced_once(tmp_path, capsys):
    shared = {"version": 1, "targets": [{"size": "320x240", "name": "small"}, {"size": "640x480", "name": "large"}]}
    assert main(["validate", write(tmp_path, shared)]) == 0
    out = capsys.readouterr().out
    table = rows(out)
    assert table["small"][-1] == "0.075"
    assert table["large"][-3:] == ["0.000", "(from", "small)"]
    assert table["total"] == ["total", "0.075"]
    assert "1 paid generation, 1 target rendered from another's for free" in out


def test_each_crop_says_where_it_falls_on_the_canvas(tmp_path, capsys):
    document = {"version": 1, "targets": [{"preset": "linkedin-banner", "focus": "top"}, {"resolution": "1536x640"}]}
    assert main(["validate", write(tmp_path, document)]) == 0
    out = capsys.readouterr().out
    # 1536x512 reframed, then 4:1: the top 384 rows of 512.
    assert "  linkedin-banner: keeps x 0-1536, y 0-384 of the 1536x512 canvas (focus top)" in out
    assert "1536x640: keeps" not in out  # an API resolution is not cropped


def test_the_deliverables_their_keys_and_cost(tmp_path, capsys, settings_env):
    settings_env.setenv("OUTPUT_KEY_TEMPLATE", "img/{dir}/{stem}/{name}-{width}w.{hash}.{ext}")
    document = {
        "version": 1,
        "targets": [{"size": "1200x628", "name": "og", "widths": [600]}, {"size": "600x314", "name": "small"}],
        "output": {"formats": ["avif", "jpeg"]},
    }
    assert main(["validate", write(tmp_path, document)]) == 0
    out = capsys.readouterr().out
    assert "6 deliverable(s):" in out
    lines = [line.split() for line in out.splitlines() if line.startswith(("og ", "small "))]
    deliverables = [line for line in lines if line[1] in ("avif", "jpeg")]
    assert deliverables == [
        ["og", "avif", "1200x628", "img/photo/og-1200w.<hash>.avif", "0.075"],
        ["og", "avif", "600x314", "img/photo/og-600w.<hash>.avif", "0.000"],
        ["og", "jpeg", "1200x628", "img/photo/og-1200w.<hash>.jpg", "0.000"],
        ["og", "jpeg", "600x314", "img/photo/og-600w.<hash>.jpg", "0.000"],
        ["small", "avif", "600x314", "img/photo/small-600w.<hash>.avif", "0.000"],  # rendered from og's generation
        ["small", "jpeg", "600x314", "img/photo/small-600w.<hash>.jpg", "0.000"],
    ]
    assert "output: avif, jpeg, quality 90" in out


def test_widths_the_key_template_cannot_tell_apart(tmp_path, capsys):
    document = {"version": 1, "targets": [{"size": "1200x628", "widths": [600]}]}
    assert main(["validate", write(tmp_path, document)]) == 1
    assert "targets[0].widths: the deliverables' key template (setting OUTPUT_KEY_TEMPLATE)" in capsys.readouterr().err
