"""The regenerate action's sidecar: a new seed on the one target that makes the variant, nothing else changed."""

from __future__ import annotations

import json

import pytest

from reframe_cli.errors import UserError
from reframe_cli.regenerate import new_seed, reseeded
from reframe_pipeline.domain.sidecar import InvalidSidecarError
from reframe_pipeline.settings import Settings

SIDECAR = {
    "$schema": "../schemas/sidecar.schema.json",
    "version": 1,
    "targets": [{"aspect_ratio": "16:9"}, {"preset": "instagram-story", "seed": 111}, {"size": "64x64", "name": "t"}],
    "output": {"format": "webp"},
}


@pytest.fixture
def settings(monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("REFRAME_PROVIDER", "local")
    return Settings.from_env()


@pytest.mark.parametrize(("variant", "index"), [("1312x736", 0), ("instagram-story", 1), ("t", 2)])
def test_the_seed_goes_on_the_target_that_makes_the_variant(settings: Settings, variant: str, index: int):
    document = reseeded(json.dumps(SIDECAR).encode(), variant, 4242, settings)
    expected = json.loads(json.dumps(SIDECAR))
    expected["targets"][index]["seed"] = 4242
    assert document == expected


def test_an_unknown_variant_or_an_invalid_sidecar_is_refused(settings: Settings):
    with pytest.raises(UserError, match="no target of the sidecar makes 'nope'"):
        reseeded(json.dumps(SIDECAR).encode(), "nope", 4242, settings)
    with pytest.raises(InvalidSidecarError):
        reseeded(b'{"version": 1, "targets": [{"resolution": "1x1"}]}', "1x1", 4242, settings)


def test_new_seed_is_in_range_and_differs_from_the_old_one():
    seeds = {new_seed(500) for _ in range(200)}
    assert 500 not in seeds and all(100 <= s <= 999999 for s in seeds)
