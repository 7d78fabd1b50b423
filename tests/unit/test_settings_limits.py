"""Settings that are read and checked at start-up, and the planning rules they feed."""

from __future__ import annotations

import json

import pytest

from reframe_cli.cli import main
from reframe_pipeline import settings as settings_module
from reframe_pipeline.domain.planning import plan
from reframe_pipeline.domain.pricing import DEFAULT_PRICES, UnpricedError, estimate
from reframe_pipeline.domain.sidecar import InvalidSidecarError, parse_sidecar
from reframe_pipeline.settings import Settings, SettingsError


def settings(**env: str) -> Settings:
    return Settings.from_env(env)


def planned(document: dict, *, default_speed: str = "DEFAULT", style_prefix: str = "styles/"):
    sidecar = parse_sidecar(json.dumps(document).encode(), max_bytes=65536, max_targets=20)
    return plan(sidecar, provider="segmind", default_speed=default_speed, style_prefix=style_prefix)


def test_the_defaults_are_a_valid_configuration():
    s = settings()
    assert (s.style_prefix, s.default_rendering_speed) == ("styles/", "DEFAULT")
    assert (s.read_timeout_s, s.call_budget_ms) == (60.0, 60000)
    assert s.daily_budget_usd is None


def test_style_prefix_and_default_speed_are_read():
    s = settings(STYLE_PREFIX="brand", DEFAULT_RENDERING_SPEED="TURBO")
    assert (s.style_prefix, s.default_rendering_speed) == ("brand/", "TURBO")


@pytest.mark.parametrize(
    ("env", "fragment"),
    [
        ({"INPUT_PREFIX": "media/", "OUTPUT_PREFIX": "media"}, "are equal"),
        ({"INPUT_PREFIX": "media/", "OUTPUT_PREFIX": "media/out/"}, "are nested"),
        ({"INPUT_PREFIX": "media/in/", "OUTPUT_PREFIX": "media/"}, "are nested"),
        ({"INPUT_PREFIX": "", "OUTPUT_PREFIX": "reframed/"}, "are nested"),
    ],
)
def test_overlapping_prefixes_are_refused(env: dict[str, str], fragment: str):
    with pytest.raises(SettingsError, match=fragment) as caught:
        settings(**env)
    assert "INPUT_PREFIX" in str(caught.value) and "OUTPUT_PREFIX" in str(caught.value)


def test_prefixes_that_only_share_a_beginning_are_apart():
    assert settings(INPUT_PREFIX="media/", OUTPUT_PREFIX="media-out/").output_prefix == "media-out/"


def test_a_call_budget_shorter_than_the_read_timeout_is_refused():
    with pytest.raises(SettingsError, match=r"CALL_BUDGET_MS \(30000\) is below READ_TIMEOUT_S"):
        settings(CALL_BUDGET_MS="30000")
    assert settings(CALL_BUDGET_MS="30000", READ_TIMEOUT_S="30").call_budget_ms == 30000


def test_an_upload_reserve_shorter_than_one_aws_request_is_refused():
    # No AWS request starts with less than one attempt's longest time left: a reserve below it (and a second to
    # check the answer) would leave a paid result no time to be written.
    with pytest.raises(SettingsError, match=r"UPLOAD_RESERVE_MS \(4999\) is below 5000"):
        settings(UPLOAD_RESERVE_MS="4999")
    assert settings(UPLOAD_RESERVE_MS="5000").upload_reserve_ms == 5000


@pytest.mark.parametrize(
    ("env", "fragment"),
    [
        ({"STYLE_PREFIX": "/"}, "STYLE_PREFIX: must name a folder"),
        ({"DEFAULT_RENDERING_SPEED": "FAST"}, "DEFAULT_RENDERING_SPEED: Input should be"),
        ({"DEFAULT_SIDECAR": "[" * 5000}, "DEFAULT_SIDECAR: sidecar is nested too deeply"),
    ],
)
def test_wrong_values_name_the_setting(env: dict[str, str], fragment: str):
    with pytest.raises(SettingsError, match=fragment):
        settings(**env)


def test_an_empty_daily_budget_is_no_budget():
    # What the template passes when the DailyBudgetUsd parameter is left empty.
    assert settings(DAILY_BUDGET_USD="").daily_budget_usd is None
    assert settings(DAILY_BUDGET_USD="25", IDEMPOTENCY_TABLE="t").daily_budget_usd == 25.0


# -- planning with the settings ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("document", "field"),
    [
        (
            {"version": 1, "style_reference_images": ["uploads/someone-else.png"], "targets": [{"size": "64x64"}]},
            "style_reference_images[0]",
        ),
        (
            {
                "version": 1,
                "targets": [
                    {"size": "64x64"},
                    {"size": "96x64", "style_reference_images": ["styles/ok.png", "reframed/a.png/og.png"]},
                ],
            },
            "targets[1].style_reference_images[1]",
        ),
    ],
)
def test_style_reference_keys_outside_the_style_prefix_are_refused(document: dict, field: str):
    with pytest.raises(InvalidSidecarError) as caught:
        planned(document)
    assert caught.value.message.startswith(f"{field}: ")
    assert "is not under the style prefix 'styles/' (setting STYLE_PREFIX)" in caught.value.message


def test_style_references_under_the_prefix_or_public_urls_are_planned():
    refs = ["styles/brand.png", "https://example.com/look.png"]
    [variant] = planned({"version": 1, "style_reference_images": refs, "targets": [{"size": "64x64"}]})
    assert variant.style_references == tuple(refs)


def test_the_default_speed_applies_where_none_is_named_and_counts_in_the_hash():
    document = {"version": 1, "targets": [{"size": "64x64"}, {"size": "96x64", "rendering_speed": "QUALITY"}]}
    default, quality = planned(document)
    turbo, still_quality = planned(document, default_speed="TURBO")
    assert (default.rendering_speed, turbo.rendering_speed) == ("DEFAULT", "TURBO")
    assert default.param_hash != turbo.param_hash
    assert still_quality.rendering_speed == "QUALITY" and still_quality.param_hash == quality.param_hash
    # The same pixels asked for explicitly or through the default: the same variant.
    [explicit] = planned({"version": 1, "targets": [{"size": "64x64", "rendering_speed": "TURBO"}]})
    assert explicit.param_hash == turbo.param_hash


def test_validate_applies_the_style_prefix_and_default_speed(tmp_path, capsys, monkeypatch):
    path = tmp_path / "photo.jpg.reframe.json"
    path.write_text(json.dumps({"version": 1, "style_reference_images": ["a.png"], "targets": [{"size": "64x64"}]}))
    monkeypatch.delenv("STYLE_PREFIX", raising=False)
    monkeypatch.setenv("DEFAULT_RENDERING_SPEED", "TURBO")

    assert main(["validate", str(path)]) == 1
    assert "style_reference_images[0]: 'a.png' is not under the style prefix 'styles/'" in capsys.readouterr().err

    monkeypatch.setenv("STYLE_PREFIX", "brand/")
    path.write_text(
        json.dumps({"version": 1, "style_reference_images": ["brand/a.png"], "targets": [{"size": "64x64"}]})
    )
    assert main(["validate", str(path)]) == 0
    assert "TURBO" in capsys.readouterr().out


def test_a_provider_without_prices_is_refused_not_counted_as_free(monkeypatch: pytest.MonkeyPatch):
    # As if a provider were added to the code but not to the price table.
    monkeypatch.setattr(settings_module, "DEFAULT_PRICES", {"segmind": {"TURBO": 0.037}})
    with pytest.raises(SettingsError, match="PRICE_TABLE has no price for segmind DEFAULT, QUALITY"):
        Settings.from_env({})


def test_an_estimate_for_an_unknown_provider_fails_loudly():
    with pytest.raises(UnpricedError, match="no price for acme DEFAULT"):
        estimate(DEFAULT_PRICES, "acme", "DEFAULT")
