"""A sidecar's ``output.formats`` and a target's ``widths`` (domain/sidecar.py, domain/planning.py): the
deliverables they plan, the errors naming the field, and parameter hashes of earlier sidecars unchanged."""

from __future__ import annotations

import json

import pytest

from reframe_pipeline.domain.planning import plan
from reframe_pipeline.domain.sidecar import InvalidSidecarError, parse_sidecar

PLAN = {"provider": "segmind", "default_speed": "DEFAULT", "style_prefix": "styles/"}


def planned(document: dict, **options: object):
    sidecar = parse_sidecar(json.dumps(document).encode(), max_bytes=65536, max_targets=20)
    return plan(sidecar, **{**PLAN, **options})  # type: ignore[arg-type]


def test_formats_times_widths_from_one_generation() -> None:
    og, story = planned(
        {
            "version": 1,
            "targets": [{"size": "1200x628", "name": "og", "widths": [600]}, {"aspect_ratio": "9:16", "name": "story"}],
            "output": {"formats": ["avif", "jpeg"], "quality": 80},
        }
    )
    assert [(r.format, r.width, r.height) for r in og.renditions] == [
        ("avif", 1200, 628),
        ("avif", 600, 314),
        ("jpeg", 1200, 628),
        ("jpeg", 600, 314),
    ]
    assert [(r.format, r.width) for r in story.renditions] == [("avif", 736), ("jpeg", 736)]


def test_one_format_one_width_as_before() -> None:
    (v,) = planned({"version": 1, "targets": [{"resolution": "1024x1024"}], "output": {"format": "webp"}})
    assert [(r.format, r.width, r.height) for r in v.renditions] == [("webp", 1024, 1024)]


def test_earlier_sidecars_keep_their_parameter_hash() -> None:
    """Their variants stay current: the new fields enter the hash only when given."""
    before = planned({"version": 1, "targets": [{"size": "1200x628"}], "output": {"format": "jpeg"}})[0]
    # This variant's hash as the planning before formats and widths computed it.
    assert before.param_hash == "a4650ab9fd5d90a9874c144f94b193ed"
    widths = planned({"version": 1, "targets": [{"size": "1200x628", "widths": [600]}], "output": {"format": "jpeg"}})
    formats = planned({"version": 1, "targets": [{"size": "1200x628"}], "output": {"formats": ["jpeg"]}})
    assert len({before.param_hash, widths[0].param_hash, formats[0].param_hash}) == 3
    assert before.generation_hash == widths[0].generation_hash == formats[0].generation_hash  # nothing to pay


@pytest.mark.parametrize(
    ("document", "message"),
    [
        (
            {"targets": [{"size": "1200x628", "widths": [1300]}]},
            r"targets\[0\]\.widths\[0\]: 1300 is wider than the target \(1200",
        ),
        (
            {"targets": [{"resolution": "1024x1024"}, {"preset": "open-graph", "widths": [600, 2000]}]},
            r"targets\[1\]\.widths\[1\]: 2000 is wider",
        ),
        ({"targets": [{"size": "1200x628", "widths": [600, 600]}]}, r"targets\[0\]\.widths: .*each width once"),
        (
            {"targets": [{"size": "1200x628", "widths": [8]}]},
            r"targets\[0\]\.widths\[0\]: Input should be greater than or equal to 16",
        ),
        ({"targets": [{"size": "1200x628", "widths": []}]}, r"targets\[0\]\.widths: .*at least 1"),
        ({"targets": [{"size": "1200x628"}], "output": {"formats": ["jpeg", "jpeg"]}}, r"output: .*each format once"),
        (
            {"targets": [{"size": "1200x628"}], "output": {"formats": ["gif"]}},
            r"output\.formats\[0\]: Input should be .png., .jpeg., .webp. or .avif.",
        ),
        (
            {"targets": [{"size": "1200x628"}], "output": {"formats": ["png"], "format": "png"}},
            r"'format' \(one\) or 'formats'",
        ),
    ],
)
def test_errors_name_the_field(document: dict, message: str) -> None:
    with pytest.raises(InvalidSidecarError, match=message):
        planned({"version": 1, **document})


def test_widths_need_a_template_that_tells_them_apart() -> None:
    document = {"version": 1, "targets": [{"size": "1200x628", "widths": [600]}]}
    with pytest.raises(InvalidSidecarError, match=r"targets\[0\]\.widths: .*OUTPUT_KEY_TEMPLATE"):
        planned(document, widths_allowed=False)
    assert planned({"version": 1, "targets": [{"size": "1200x628"}]}, widths_allowed=False)
