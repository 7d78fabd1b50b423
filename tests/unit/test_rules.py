"""Domain rules that once went wrong unnoticed: who may be fetched by the provider, how long a presigned URL
lives, what an unknown price costs."""

from __future__ import annotations

import pydantic
import pytest

from reframe_pipeline.domain.pricing import DEFAULT_PRICES, estimate
from reframe_pipeline.domain.sidecar import check_reference
from reframe_pipeline.settings import Settings


@pytest.mark.parametrize(
    "ref",
    [
        "https://metadata.internal/latest",
        "https://printer.local/scan.png",
        "https://intranet/logo.png",  # a single label: resolved by the VPC's search domains
        "https://localhost/a.png",
        "https://app.localhost/a.png",
        "https://box.localdomain/a.png",
        "https://METADATA.INTERNAL/latest",
        "https://10.0.0.1/a.png",
        "https://169.254.169.254/latest/meta-data",
        "https://[::1]/a.png",
        "http://example.com/a.png",
        "ftp://example.com/a.png",
        "https:///a.png",
    ],
)
def test_references_to_private_hosts_are_refused(ref: str) -> None:
    with pytest.raises(ValueError, match=r"host|address|https"):
        check_reference(ref)


@pytest.mark.parametrize(
    "ref",
    ["https://example.com/a.png", "https://cdn.example.co.uk/x/y.webp", "https://8.8.8.8/a.png", "styles/brand.png"],
)
def test_public_hosts_and_keys_are_kept_as_written(ref: str) -> None:
    assert check_reference(ref) == ref


@pytest.mark.parametrize("ref", ["/styles/a.png", "styles/../secret.png", "  "])
def test_keys_that_escape_or_are_blank_are_refused(ref: str) -> None:
    with pytest.raises(ValueError, match="not a usable object key"):
        check_reference(ref)


def test_the_host_check_names_the_host() -> None:
    with pytest.raises(ValueError, match=r"host 'metadata\.internal' is not a public host"):
        check_reference("https://metadata.internal/x")
    with pytest.raises(ValueError, match=r"address 10\.1\.2\.3 is private"):
        check_reference("https://10.1.2.3/x")


@pytest.mark.parametrize("seconds", [901, 3600])
def test_presigned_urls_live_at_most_fifteen_minutes(seconds: int) -> None:
    with pytest.raises(pydantic.ValidationError):
        Settings(presign_expiry_s=seconds)
    assert Settings().presign_expiry_s == 900
    assert Settings(presign_expiry_s=60).presign_expiry_s == 60


def test_an_unknown_provider_or_speed_is_free() -> None:
    assert estimate(DEFAULT_PRICES, "segmind", "QUALITY") == 0.113
    assert estimate(DEFAULT_PRICES, "segmind", "FAST") == 0.0
    assert estimate(DEFAULT_PRICES, "other", "DEFAULT") == 0.0
    assert isinstance(estimate({}, "other", "DEFAULT"), float)
