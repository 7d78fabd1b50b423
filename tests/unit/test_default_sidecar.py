"""DEFAULT_SIDECAR is checked as a sidecar at start-up, and a wrong setting says what is wrong."""

from __future__ import annotations

import json

import pytest

from reframe_pipeline.settings import Settings, SettingsError

GOOD = {"version": 1, "targets": [{"preset": "instagram-story"}]}


@pytest.mark.parametrize(
    ("document", "fragment"),
    [
        ({"version": 1, "targets": [{"resolution": "1x1"}]}, "targets[0].resolution: '1x1' is not one of the 69"),
        ({"version": 1, "targets": []}, "DEFAULT_SIDECAR: targets:"),
        ([GOOD], "sidecar must be a JSON object"),
        # Planning rules too: a key outside STYLE_PREFIX would fail every image at run time.
        (
            {"version": 1, "style_reference_images": ["uploads/x.png"], "targets": [{"size": "64x64"}]},
            "style_reference_images[0]: 'uploads/x.png' is not under the style prefix",
        ),
        ({"version": 1, "targets": [{"size": "64x64"}, {"size": "64x64"}]}, "is produced twice"),
    ],
)
def test_a_default_sidecar_that_is_not_a_valid_sidecar_is_refused_at_start_up(document, fragment):
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({"DEFAULT_SIDECAR": json.dumps(document)})
    assert fragment in str(caught.value)
    assert "DEFAULT_SIDECAR: " in str(caught.value)


def test_the_default_sidecar_follows_the_deployment_limits():
    document = json.dumps({"version": 1, "targets": [{"size": "64x64"}, {"size": "96x64"}]})
    assert Settings.from_env({"DEFAULT_SIDECAR": document}).default_sidecar == document
    with pytest.raises(SettingsError, match=r"over the limit of 1 \(setting MAX_TARGETS_PER_OBJECT\)"):
        Settings.from_env({"DEFAULT_SIDECAR": document, "MAX_TARGETS_PER_OBJECT": "1"})


def test_an_empty_default_sidecar_is_none():
    assert Settings.from_env({"DEFAULT_SIDECAR": " "}).default_sidecar is None


def test_a_check_across_settings_names_them_without_an_empty_field_name():
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({"DAILY_BUDGET_USD": "5"})
    message = str(caught.value)
    assert message == (
        "invalid settings (environment variables): "
        "DAILY_BUDGET_USD is counted in the idempotency table: set IDEMPOTENCY_TABLE too"
    )
