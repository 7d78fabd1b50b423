"""Delivery settings (domain/delivery.py, settings.py): CACHE_CONTROL's default and its check against the
key template, PUBLIC_BASE_URL, OUTPUT_BUCKET; and the renditions' sizes, URLs and srcset (domain/renditions.py)."""

from __future__ import annotations

import pytest

from reframe_pipeline.domain.delivery import IMMUTABLE_CACHE_CONTROL, SHORT_CACHE_CONTROL
from reframe_pipeline.domain.renditions import Sized, all_widths, public_url, scaled, specs, srcsets
from reframe_pipeline.domain.resolutions import Size
from reframe_pipeline.settings import Settings, SettingsError

HASHED = "img/{dir}/{stem}/{name}-{width}w.{hash}.{ext}"


def test_defaults_are_the_keys_of_before_and_a_short_cache() -> None:
    delivery = Settings.from_env({}).delivery
    assert delivery.template.text == "{prefix}{path}/{name}.{ext}"
    assert delivery.cache_control == SHORT_CACHE_CONTROL == "public, max-age=300"
    assert delivery.base_url is None and delivery.url("reframed/a.png/og.png") is None
    assert Settings.from_env({}).output_bucket is None


def test_with_hash_in_the_key_the_default_cache_is_immutable() -> None:
    delivery = Settings.from_env({"OUTPUT_KEY_TEMPLATE": HASHED}).delivery
    assert delivery.cache_control == IMMUTABLE_CACHE_CONTROL == "public, max-age=31536000, immutable"


def test_immutable_without_hash_is_refused_at_start_up() -> None:
    with pytest.raises(
        SettingsError, match=r"CACHE_CONTROL .* says immutable, but OUTPUT_KEY_TEMPLATE .* has no \{hash\}"
    ):
        Settings.from_env({"CACHE_CONTROL": "public, max-age=31536000, immutable"})
    given = {"CACHE_CONTROL": "public, max-age=86400, immutable", "OUTPUT_KEY_TEMPLATE": HASHED}
    assert Settings.from_env(given).delivery.cache_control == "public, max-age=86400, immutable"


def test_cache_control_on_one_line() -> None:
    with pytest.raises(SettingsError, match="printable ASCII on one line"):
        Settings.from_env({"CACHE_CONTROL": "max-age=60\r\nX-Evil: 1"})


def test_a_refused_template_fails_the_start() -> None:
    with pytest.raises(SettingsError, match=r"unknown placeholder \{size\}"):
        Settings.from_env({"OUTPUT_KEY_TEMPLATE": "img/{path}/{size}.{ext}"})
    with pytest.raises(SettingsError, match="could land under INPUT_PREFIX"):
        Settings.from_env({"OUTPUT_KEY_TEMPLATE": "{path}/{name}.{ext}"})


def test_another_bucket_may_take_keys_from_its_root() -> None:
    settings = Settings.from_env({"OUTPUT_BUCKET": "cdn-assets", "OUTPUT_KEY_TEMPLATE": "{path}/{name}.{ext}"})
    assert settings.output_bucket == "cdn-assets"
    with pytest.raises(SettingsError, match="OUTPUT_BUCKET"):
        Settings.from_env({"OUTPUT_BUCKET": "Not_A_Bucket"})
    assert Settings.from_env({"OUTPUT_BUCKET": " "}).output_bucket is None


@pytest.mark.parametrize(
    ("given", "kept"),
    [
        ("https://cdn.example.com/", "https://cdn.example.com"),
        ("https://x.test/img", "https://x.test/img"),
        ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
        ("", None),
    ],
)
def test_public_base_url(given: str, kept: str | None) -> None:
    assert Settings.from_env({"PUBLIC_BASE_URL": given}).delivery.base_url == kept


@pytest.mark.parametrize("given", ["http://cdn.example.com", "cdn.example.com", "https://x.test/?a=1", "ftp://x.test"])
def test_public_base_url_refused(given: str) -> None:
    with pytest.raises(SettingsError, match="PUBLIC_BASE_URL"):
        Settings.from_env({"PUBLIC_BASE_URL": given})


def test_urls_percent_encode_the_key_but_keep_its_folders() -> None:
    assert public_url("https://cdn.example.com", "img/c++ notes 100%/og.jpg") == (
        "https://cdn.example.com/img/c%2B%2B%20notes%20100%25/og.jpg"
    )


def test_widths_keep_the_aspect_widest_first() -> None:
    og = Size(1200, 628)
    assert all_widths(og, [600, 1200, 300]) == (1200, 600, 300)
    assert all_widths(og, None) == (1200,)
    assert scaled(og, 600) == Size(600, 314) and scaled(Size(4096, 16), 16) == Size(16, 1)
    made = specs(og, ("avif", "jpeg"), (1200, 600))
    assert [(s.format, s.width, s.height) for s in made] == [
        ("avif", 1200, 628),
        ("avif", 600, 314),
        ("jpeg", 1200, 628),
        ("jpeg", 600, 314),
    ]


def test_srcset_per_format_widest_first() -> None:
    written = [
        Sized("jpeg", 600, "u/og-600.jpg"),
        Sized("avif", 1200, "u/og-1200.avif"),
        Sized("jpeg", 1200, "u/og.jpg"),
    ]
    assert srcsets(written) == {"jpeg": "u/og.jpg 1200w, u/og-600.jpg 600w", "avif": "u/og-1200.avif 1200w"}
