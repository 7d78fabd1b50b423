import json

import pytest

from reframe_pipeline.domain.planning import plan
from reframe_pipeline.domain.sidecar import InvalidSidecarError, parse_sidecar

# The settings' defaults (DEFAULT_RENDERING_SPEED, STYLE_PREFIX).
PLAN = {"default_speed": "DEFAULT", "style_prefix": "styles/"}


def parse(document, max_targets=20):
    raw = document if isinstance(document, bytes) else json.dumps(document).encode()
    return parse_sidecar(raw, max_bytes=65536, max_targets=max_targets)


def test_the_design_example_is_valid():
    sidecar = parse(
        {
            "version": 1,
            "targets": [
                {"resolution": "1536x640"},
                {"aspect_ratio": "9:16"},
                {"size": "1200x628", "name": "og"},
                {"resolution": "1024x1024", "rendering_speed": "QUALITY", "seed": 4242},
            ],
            "rendering_speed": "DEFAULT",
            "seed": 4242,
            "style_codes": ["5a3f09c1", "0000FFFF"],
            "color_palette": {"name": "PASTEL"},
            "output": {"format": "original", "quality": 90},
        }
    )
    variants = plan(sidecar, provider="segmind", **PLAN)
    assert [v.name for v in variants] == ["1536x640", "736x1312", "og", "1024x1024"]
    assert [str(v.resolution) for v in variants] == ["1536x640", "736x1312", "1344x704", "1024x1024"]
    assert str(variants[2].final_size) == "1200x628" and variants[2].needs_crop
    assert variants[3].rendering_speed == "QUALITY" and variants[0].rendering_speed == "DEFAULT"
    assert variants[0].color_palette == {"name": "PASTEL"}
    assert variants[0].style_codes == ("5a3f09c1", "0000FFFF")


@pytest.mark.parametrize(
    ("document", "fragment"),
    [
        ({"targets": [{"resolution": "1024x1024"}]}, "version: Field required"),
        ({"version": 2, "targets": [{"resolution": "1024x1024"}]}, "version"),
        ({"version": 1, "targets": []}, "targets: List should have at least 1 item"),
        ({"version": 1, "targets": [{"resolution": "1000x1000"}]}, "targets[0].resolution"),
        ({"version": 1, "targets": [{"resolution": "1024x1024", "size": "100x100"}]}, "exactly one of"),
        ({"version": 1, "targets": [{}]}, "exactly one of"),
        (
            {"version": 1, "targets": [{"resolution": "1024x1024", "colour": 1}]},
            "targets[0].colour: Extra inputs",
        ),
        ({"version": 1, "targets": [{"aspect_ratio": "wide"}]}, "targets[0].aspect_ratio"),
        ({"version": 1, "targets": [{"preset": "myspace"}]}, "unknown preset"),
        ({"version": 1, "seed": 5, "targets": [{"resolution": "1024x1024"}]}, "seed"),
        ({"version": 1, "seed": "4242", "targets": [{"resolution": "1024x1024"}]}, "seed"),
        (
            {"version": 1, "rendering_speed": "FAST", "targets": [{"resolution": "1024x1024"}]},
            "rendering_speed",
        ),
        (
            {
                "version": 1,
                "color_palette": {"members": [{"color_hex": "red"}]},
                "targets": [{"resolution": "1024x1024"}],
            },
            "color_palette.members[0].color_hex",
        ),
        (
            {
                "version": 1,
                "color_palette": {"members": [{"color_hex": "#ff0000", "color_weight": 2}]},
                "targets": [{"resolution": "1024x1024"}],
            },
            "color_weight",
        ),
        ({"version": 1, "color_palette": {"name": "NEON"}, "targets": [{"resolution": "1024x1024"}]}, "name"),
        (
            {
                "version": 1,
                "style_reference_images": ["http://example.com/a.png"],
                "targets": [{"size": "64x64"}],
            },
            "only https",
        ),
        (
            {
                "version": 1,
                "style_reference_images": ["https://169.254.169.254/x"],
                "targets": [{"size": "64x64"}],
            },
            "link-local",
        ),
        (
            {"version": 1, "style_reference_images": ["https://localhost/x"], "targets": [{"size": "64x64"}]},
            "not a public host",
        ),
        (
            {"version": 1, "style_reference_images": ["../secret.png"], "targets": [{"size": "64x64"}]},
            "not a usable object key",
        ),
        (
            {"version": 1, "targets": [{"size": "64x64", "name": "a/b"}]},
            "targets[0].name",
        ),
        (
            {"version": 1, "style_codes": ["AAAA"], "targets": [{"size": "64x64"}]},
            "style_codes[0]: 'AAAA' is not a style code",
        ),
        ({"version": 1, "style_codes": ["5A3F09G1"], "targets": [{"size": "64x64"}]}, "8 hexadecimal characters"),
        ({"version": 1, "style_codes": [" 5A3F09C1"], "targets": [{"size": "64x64"}]}, "style_codes[0]"),
        ({"version": 1, "output": {"format": "gif"}, "targets": [{"size": "64x64"}]}, "output.format"),
        ({"version": 1, "output": {"quality": 0}, "targets": [{"size": "64x64"}]}, "output.quality"),
    ],
)
def test_invalid_sidecars_name_the_field(document, fragment):
    with pytest.raises(InvalidSidecarError) as caught:
        parse(document)
    assert fragment in caught.value.message


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [(b"{not json", "not valid JSON"), (b"[1]", "JSON object"), (b"\xff\xfe", "not valid JSON")],
)
def test_non_json(raw, fragment):
    with pytest.raises(InvalidSidecarError, match=fragment):
        parse(raw)


def test_size_and_target_limits():
    with pytest.raises(InvalidSidecarError, match="over the limit of 256"):
        parse_sidecar(b" " * 300, max_bytes=256, max_targets=20)
    doc = {"version": 1, "targets": [{"size": f"{64 + i}x64"} for i in range(3)]}
    with pytest.raises(InvalidSidecarError, match="MAX_TARGETS_PER_OBJECT"):
        parse(doc, max_targets=2)


def test_duplicate_names_are_refused():
    sidecar = parse({"version": 1, "targets": [{"resolution": "1024x1024"}, {"aspect_ratio": "1:1"}]})
    with pytest.raises(InvalidSidecarError, match="produced twice"):
        plan(sidecar, provider="local", **PLAN)


def test_param_hash_changes_with_what_changes_the_pixels():
    def hashes(extra, provider="segmind"):
        doc = {"version": 1, "targets": [{"resolution": "1024x1024", **extra}]}
        return plan(parse(doc), provider=provider, **PLAN)[0].param_hash

    base = hashes({})
    assert base == hashes({})
    assert base != hashes({"seed": 123})
    assert base != hashes({"rendering_speed": "TURBO"})
    assert base != hashes({}, provider="local")
    assert base == hashes({"name": "1024x1024"})  # the same target under its default name


def test_presets_resolve_to_exact_pixels():
    variants = plan(parse({"version": 1, "targets": [{"preset": "linkedin-banner"}]}), provider="local", **PLAN)
    assert variants[0].name == "linkedin-banner"
    assert str(variants[0].resolution) == "1536x512"  # 4:1 is wider than the widest allowed
    assert str(variants[0].final_size) == "1584x396"


def test_a_schema_key_is_accepted_and_ignored():
    with_schema = parse({"$schema": "./schemas/sidecar.schema.json", "version": 1, "targets": [{"size": "64x64"}]})
    without = parse({"version": 1, "targets": [{"size": "64x64"}]})
    assert plan(with_schema, provider="local", **PLAN) == plan(without, provider="local", **PLAN)


def test_style_codes_and_references_cannot_meet_across_levels():
    sidecar = parse(
        {
            "version": 1,
            "style_codes": ["AB12CD34"],
            "targets": [{"size": "64x64", "style_reference_images": ["styles/a.png"]}],
        }
    )
    with pytest.raises(InvalidSidecarError, match=r"targets\[0\]: style_codes cannot be combined"):
        plan(sidecar, provider="ideogram", **PLAN)
