"""Domain rules that once went wrong unnoticed: who may be fetched by the provider, how long a presigned URL
lives, what an unknown price costs."""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import time
from typing import Any

import pydantic
import pytest

from reframe_pipeline.adapters.inbound.s3_events import MalformedEventError, parse_notification, parse_sqs_body
from reframe_pipeline.application.object_metadata import check_output_limits, source_key_tag
from reframe_pipeline.application.values import Ticket
from reframe_pipeline.domain.errors import OutputLimitError, ProviderRejectedError, ProviderTransientError
from reframe_pipeline.domain.events import KeyKind, ObjectEvent, classify
from reframe_pipeline.domain.planning import plan
from reframe_pipeline.domain.pricing import DEFAULT_PRICES, UnpricedError, estimate
from reframe_pipeline.domain.resolutions import RESOLUTION_NAMES, nearest_resolution, parse_size
from reframe_pipeline.domain.sidecar import InvalidSidecarError, check_reference, parse_sidecar
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


def test_an_unknown_provider_or_speed_is_refused_never_counted_as_free() -> None:
    assert estimate(DEFAULT_PRICES, "segmind", "QUALITY") == 0.113
    for provider, speed in (("segmind", "FAST"), ("other", "DEFAULT")):
        with pytest.raises(UnpricedError):
            estimate(DEFAULT_PRICES, provider, speed)


def test_an_aspect_halfway_between_two_resolutions_goes_to_the_larger_area() -> None:
    sizes = sorted((parse_size(name) for name in RESOLUTION_NAMES), key=lambda size: size.aspect)
    for smaller_aspect, larger_aspect in itertools.pairwise(sizes):
        halfway = math.sqrt(smaller_aspect.aspect * larger_aspect.aspect)
        larger_area = max(smaller_aspect, larger_aspect, key=lambda size: size.width * size.height)
        assert nearest_resolution(halfway) == larger_area, (smaller_aspect, larger_aspect)


def test_a_provider_error_may_have_cost_unless_it_says_not() -> None:
    assert ProviderTransientError("lost").billed is True
    assert ProviderRejectedError("refused", status=400, billed=False).billed is False


def _problem(document: dict[str, Any]) -> str:
    with pytest.raises(InvalidSidecarError) as caught:
        parse_sidecar(json.dumps(document).encode(), max_bytes=65536, max_targets=20)
    return caught.value.message


def test_a_sidecar_problem_names_its_field_or_the_sidecar() -> None:
    assert _problem({"version": 1, "targets": [{"resolution": "1x1"}, {"preset": "nope"}]}).startswith(
        "targets[0].resolution: '1x1' is not one of the 69 allowed resolutions (listed in docs/sidecar.md); "
        "targets[1].preset: unknown preset 'nope'"
    )
    assert _problem(
        {
            "version": 1,
            "targets": [{"resolution": "1536x512"}],
            "style_codes": ["5A3F09C1"],
            "style_reference_images": ["styles/a.png"],
        }
    ) == ("sidecar: style_codes cannot be combined with style_reference_images")


def _record(name: str, key: str = "uploads/a.jpg", **object_fields: str) -> dict[str, Any]:
    return {"eventName": name, "s3": {"bucket": {"name": "b"}, "object": {"key": key, **object_fields}}}


@pytest.mark.parametrize(
    ("name", "action"),
    [
        ("s3:ObjectCreated:Put", "created"),
        ("ObjectCreated:CompleteMultipartUpload", "created"),
        ("s3:ObjectRemoved:Delete", "removed"),
        ("ObjectRemoved:DeleteMarkerCreated", "removed"),
    ],
)
def test_s3_event_names(name: str, action: str) -> None:
    assert parse_notification({"Records": [_record(name, eTag="abc")]}) == [
        ObjectEvent("b", "uploads/a.jpg", action, "abc")
    ]  # type: ignore[arg-type]


def test_the_etag_is_read_in_either_spelling() -> None:
    (event,) = parse_notification({"Records": [_record("ObjectCreated:Put", etag="def")]})
    assert event.etag == "def"
    (event,) = parse_notification({"Records": [_record("ObjectCreated:Put", eTag="abc", etag="def")]})
    assert event.etag == "abc"


def test_a_record_without_an_event_name_is_skipped() -> None:
    record = _record("")
    del record["eventName"]
    assert parse_notification({"Records": [record]}) == []


@pytest.mark.parametrize(("detail_type", "action"), [("Object Created", "created"), ("Object Deleted", "removed")])
def test_eventbridge_event_names(detail_type: str, action: str) -> None:
    document = {
        "source": "aws.s3",
        "detail-type": detail_type,
        "detail": {"bucket": {"name": "b"}, "object": {"key": "uploads/a+b.jpg", "etag": "e"}},
    }
    assert parse_notification(document) == [ObjectEvent("b", "uploads/a+b.jpg", action, "e")]  # type: ignore[arg-type]
    del document["detail-type"]
    assert parse_notification(document) == []


def test_only_an_s3_eventbridge_event_is_read_as_one() -> None:
    with pytest.raises(MalformedEventError, match="neither 'Records'"):
        parse_notification({"source": "aws.ec2", "detail": {}})
    with pytest.raises(MalformedEventError, match="neither 'Records'"):
        parse_notification({"source": "aws.s3"})
    assert (
        parse_notification(
            {
                "source": "aws.s3",
                "detail-type": "Object Restore Completed",
                "detail": {"bucket": {"name": "b"}, "object": {"key": "k"}},
            }
        )
        == []
    )


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('{"Records": [{"eventName": "ObjectCreated:Put", "s3": {}}]}', "S3 record without 'bucket'"),
        ('{"source": "aws.s3", "detail": {"bucket": {}}}', "EventBridge event without 'name'"),
        ("{not json", "SQS message body is not JSON: Expecting property name"),
    ],
)
def test_malformed_events_say_what_is_missing(body: str, message: str) -> None:
    with pytest.raises(MalformedEventError) as caught:
        parse_sqs_body(body)
    assert caught.value.message.startswith(message)


def test_the_source_key_goes_into_metadata_quoted_or_hashed() -> None:
    assert source_key_tag("uploads/a b.png") == "uploads/a%20b.png"
    assert source_key_tag("k" * 512) == "k" * 512
    assert source_key_tag("k" * 513) == "sha256:" + hashlib.sha256(b"k" * 513).hexdigest()


def test_metadata_over_two_kilobytes_is_refused_before_paying() -> None:
    check_output_limits("k", {"m": "v" * 2047})
    with pytest.raises(OutputLimitError, match=r"^the output's metadata would be 2049 bytes, over S3's limit of 2 KB$"):
        check_output_limits("k", {"mm": "v" * 2047})


def test_style_codes_and_references_from_two_levels_are_refused_with_a_reason() -> None:
    sidecar = parse_sidecar(
        json.dumps(
            {
                "version": 1,
                "style_codes": ["5A3F09C1"],
                "targets": [{"resolution": "1536x512", "style_reference_images": ["styles/a.png"]}],
            }
        ).encode(),
        max_bytes=65536,
        max_targets=20,
    )
    with pytest.raises(InvalidSidecarError) as caught:
        plan(sidecar, provider="segmind", default_speed="DEFAULT", style_prefix="styles/")
    assert caught.value.message == (
        "targets[0]: style_codes cannot be combined with style_reference_images (one of them comes from the top level)"
    )


def test_a_ticket_keeps_two_minutes_to_spare_by_default() -> None:
    now = time.time()
    assert Ticket("segmind", "u", expires_at=now + 120.5).alive()
    assert not Ticket("segmind", "u", expires_at=now + 120.5).alive(margin_s=121)


def test_a_key_at_the_bucket_root_is_outside_the_input() -> None:
    assert classify("photo.png", "uploads/", "reframed/") is KeyKind.OUTSIDE_INPUT
    assert classify("manifest.json", "uploads/", "reframed/") is KeyKind.OUTPUT
