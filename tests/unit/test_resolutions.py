import math

import pytest

from reframe_pipeline.domain.resolutions import RESOLUTIONS, Size, nearest_resolution, parse_aspect, parse_size


def test_catalogue_has_the_69_api_values():
    assert len(RESOLUTIONS) == 69
    assert len(set(RESOLUTIONS)) == 69
    assert RESOLUTIONS[0] == Size(512, 1536)
    assert RESOLUTIONS[-1] == Size(1536, 640)


@pytest.mark.parametrize(
    ("aspect", "expected"),
    [
        ("1:1", "1024x1024"),
        ("9:16", "736x1312"),
        ("16:9", "1312x736"),
        ("3:1", "1536x512"),
        ("1:3", "512x1536"),
        ("4:1", "1536x512"),  # beyond the catalogue: the widest, cropped later
        ("1200:628", "1344x704"),
    ],
)
def test_nearest_resolution(aspect, expected):
    assert str(nearest_resolution(parse_aspect(aspect))) == expected


def test_every_catalogue_entry_maps_to_itself():
    for size in RESOLUTIONS:
        found = nearest_resolution(size.aspect)
        assert math.isclose(found.aspect, size.aspect)
        # ties (same aspect, several sizes) go to the larger area
        same = [s for s in RESOLUTIONS if math.isclose(s.aspect, size.aspect)]
        assert found == max(same, key=lambda s: s.width * s.height)


@pytest.mark.parametrize("text", ["", "12", "0x10", "10x", "axb", "10:10", "9000x10"])
def test_parse_size_rejects(text):
    with pytest.raises(ValueError):
        parse_size(text)


@pytest.mark.parametrize("text", ["", "1", "0:1", "1:0", "a:b", "16/9"])
def test_parse_aspect_rejects(text):
    with pytest.raises(ValueError):
        parse_aspect(text)
