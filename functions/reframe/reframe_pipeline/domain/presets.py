"""Named output formats (the ``preset`` target kind): the exact pixels platforms ask for."""

from __future__ import annotations

from typing import NamedTuple

from reframe_pipeline.domain.resolutions import Size


class Preset(NamedTuple):
    size: Size
    label: str


PRESETS: dict[str, Preset] = {
    "instagram-post": Preset(Size(1080, 1080), "Instagram square post"),
    "instagram-portrait": Preset(Size(1080, 1350), "Instagram portrait post (4:5)"),
    "instagram-landscape": Preset(Size(1080, 566), "Instagram landscape post"),
    "instagram-story": Preset(Size(1080, 1920), "Instagram story / reel (9:16)"),
    "tiktok": Preset(Size(1080, 1920), "TikTok video cover (9:16)"),
    "youtube-thumbnail": Preset(Size(1280, 720), "YouTube thumbnail (16:9)"),
    "youtube-banner": Preset(Size(2560, 1440), "YouTube channel banner"),
    "facebook-link": Preset(Size(1200, 628), "Facebook link image"),
    "open-graph": Preset(Size(1200, 630), "Open Graph share image"),
    "facebook-cover": Preset(Size(851, 315), "Facebook page cover"),
    "x-post": Preset(Size(1600, 900), "X (Twitter) post image (16:9)"),
    "x-header": Preset(Size(1500, 500), "X (Twitter) header (3:1)"),
    "linkedin-post": Preset(Size(1200, 627), "LinkedIn shared image"),
    "linkedin-banner": Preset(Size(1584, 396), "LinkedIn profile banner (4:1)"),
    "pinterest-pin": Preset(Size(1000, 1500), "Pinterest pin (2:3)"),
    "web-hero": Preset(Size(1920, 1080), "Full-HD web hero"),
    "web-hero-wide": Preset(Size(1920, 640), "Wide web hero band (3:1)"),
    "email-header": Preset(Size(600, 200), "E-mail header (3:1)"),
}
