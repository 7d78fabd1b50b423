"""How deliverables are published (docs/outputs.md, "Where deliverables go"): their keys, their
Cache-Control and their public URLs, from OUTPUT_KEY_TEMPLATE, CACHE_CONTROL and PUBLIC_BASE_URL."""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from reframe_pipeline.domain.key_template import KeyTemplate, KeyTemplateError, parse_template
from reframe_pipeline.domain.renditions import public_url

# CACHE_CONTROL left empty: a key whose bytes never change ({hash}) is cached for good; any other key is
# rewritten in place when its source or sidecar changes, so caches ask again after five minutes.
IMMUTABLE_CACHE_CONTROL = "public, max-age=31536000, immutable"
SHORT_CACHE_CONTROL = "public, max-age=300"
_HEADER_VALUE = re.compile(r"^[ -~]+$")  # printable ASCII: no line break can smuggle another header
_LOOPBACK = ("127.0.0.1", "localhost", "::1")


@dataclass(frozen=True)
class Delivery:
    template: KeyTemplate
    cache_control: str
    base_url: str | None  # PUBLIC_BASE_URL, without a trailing "/"
    # None: the template may write in the source bucket; else why not (OUTPUT_BUCKET named it, and the
    # template reaches INPUT_PREFIX or STYLE_PREFIX): checked per event, when the source bucket is known.
    loop: str | None = None

    def url(self, key: str) -> str | None:
        return public_url(self.base_url, key)


def default_cache_control(template: KeyTemplate) -> str:
    return IMMUTABLE_CACHE_CONTROL if template.content_addressed else SHORT_CACHE_CONTROL


def _cache_control(value: str, template: KeyTemplate) -> str:
    value = value.strip()
    if not value:
        return default_cache_control(template)
    if not _HEADER_VALUE.match(value):
        raise ValueError(f"CACHE_CONTROL {value!r} must be printable ASCII on one line")
    if "immutable" in value.lower() and not template.content_addressed:
        raise ValueError(
            f"CACHE_CONTROL {value!r} says immutable, but OUTPUT_KEY_TEMPLATE {template.text!r} has no {{hash}}:"
            " a changed source rewrites the same keys, and browsers would keep the old image; add {hash} to"
            f" the template or use a short max-age such as {SHORT_CACHE_CONTROL!r}"
        )
    return value


def _base_url(value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip().rstrip("/")
    parts = urlsplit(value)
    local = parts.scheme == "http" and parts.hostname in _LOOPBACK  # a local server, for tests and demos
    if not (parts.scheme == "https" or local) or not parts.hostname or parts.query or parts.fragment:
        raise ValueError(f"PUBLIC_BASE_URL {value!r} must be an https URL (no query), such as https://cdn.example.com")
    return value


def delivery_for(
    *,
    template: str,
    cache_control: str,
    public_base_url: str | None,
    output_prefix: str,
    input_prefix: str,
    style_prefix: str,
    same_bucket: bool,
) -> Delivery:
    """The settings checked together; a ValueError names the setting and the reason."""
    try:
        parsed = parse_template(
            template,
            output_prefix=output_prefix,
            input_prefix=input_prefix,
            style_prefix=style_prefix,
            same_bucket=same_bucket,
        )
    except KeyTemplateError as exc:
        raise ValueError(str(exc)) from None
    loop = None
    if not same_bucket:
        try:
            parse_template(
                template,
                output_prefix=output_prefix,
                input_prefix=input_prefix,
                style_prefix=style_prefix,
                same_bucket=True,
            )
        except KeyTemplateError as exc:
            loop = f"OUTPUT_BUCKET is this source bucket, and {exc}"
    return Delivery(parsed, _cache_control(cache_control, parsed), _base_url(public_base_url), loop)
