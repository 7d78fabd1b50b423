import json

import pytest

from reframe_pipeline.adapters.inbound.s3_events import (
    MalformedEventError,
    is_sqs_batch,
    parse_notification,
    parse_sqs_body,
)
from reframe_pipeline.domain.events import KeyKind, ObjectEvent, classify


def s3_record(key, name="ObjectCreated:Put", bucket="bkt"):
    return {
        "eventSource": "aws:s3",
        "eventName": name,
        "s3": {"bucket": {"name": bucket}, "object": {"key": key}},
    }


@pytest.mark.parametrize(
    ("encoded", "decoded"),
    [
        ("uploads/my+photo.jpg", "uploads/my photo.jpg"),
        ("uploads%2Fa%2Fb.png", "uploads/a/b.png"),  # moto encodes '/'
        ("uploads/caf%C3%A9.jpg", "uploads/café.jpg"),
        ("uploads/1%2B1.jpg", "uploads/1+1.jpg"),
        ("uploads/100%25.jpg", "uploads/100%.jpg"),
    ],
)
def test_keys_are_url_decoded(encoded, decoded):
    assert parse_notification({"Records": [s3_record(encoded)]}) == [ObjectEvent("bkt", decoded, "created")]


def test_removed_and_other_event_names():
    events = parse_notification(
        {
            "Records": [
                s3_record("uploads/a.jpg", "ObjectRemoved:Delete"),
                s3_record("uploads/b.jpg", "ObjectRestore:Completed"),
            ]
        }
    )
    assert events == [ObjectEvent("bkt", "uploads/a.jpg", "removed")]


def test_eventbridge_object_created():
    event = {
        "version": "0",
        "detail-type": "Object Created",
        "source": "aws.s3",
        "detail": {"bucket": {"name": "bkt"}, "object": {"key": "uploads/x+y.jpg", "etag": "abc"}},
    }
    assert parse_notification(event) == [ObjectEvent("bkt", "uploads/x+y.jpg", "created", "abc")]


KEY = "uploads/c++ notes 100%.png"


def eventbridge(key):
    return {
        "detail-type": "Object Created",
        "source": "aws.s3",
        "detail": {"bucket": {"name": "bkt"}, "object": {"key": key}},
    }


def test_an_eventbridge_key_is_taken_as_it_is_directly_and_through_sqs():
    # S3 puts the key itself into its EventBridge events: decoding it would make '+' a space and '%..' a byte.
    assert parse_notification(eventbridge(KEY)) == [ObjectEvent("bkt", KEY, "created")]
    assert parse_sqs_body(json.dumps(eventbridge(KEY))) == [ObjectEvent("bkt", KEY, "created")]


def test_a_notification_key_is_url_decoded_directly_and_through_sqs():
    encoded = "uploads/c%2B%2B+notes+100%25.png"  # as S3 sends it in a notification
    assert parse_notification({"Records": [s3_record(encoded)]}) == [ObjectEvent("bkt", KEY, "created")]
    assert parse_sqs_body(json.dumps({"Records": [s3_record(encoded)]})) == [ObjectEvent("bkt", KEY, "created")]


def test_s3_test_event_is_skipped():
    assert parse_sqs_body(json.dumps({"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": "bkt"})) == []


@pytest.mark.parametrize("body", ["not json", "[]", '{"Records": "x"}', '{"Records": [{"s3": {}}]}', "{}"])
def test_malformed_bodies_raise_a_clear_error(body):
    with pytest.raises(MalformedEventError):
        parse_sqs_body(body)


def test_is_sqs_batch():
    assert is_sqs_batch({"Records": [{"eventSource": "aws:sqs", "body": "{}"}]})
    assert not is_sqs_batch({"Records": [s3_record("k")]})
    assert not is_sqs_batch({"detail": {}})


@pytest.mark.parametrize(
    ("key", "kind"),
    [
        ("uploads/a/photo.jpg", KeyKind.IMAGE),
        ("uploads/a/photo.jpg.reframe.json", KeyKind.OBJECT_SIDECAR),
        ("uploads/a/_reframe.json", KeyKind.FOLDER_SIDECAR),
        ("reframed/a/photo.jpg/1024x1024.png", KeyKind.OUTPUT),
        ("reframed/a/photo.jpg/manifest.json", KeyKind.OUTPUT),
        ("uploads/a/manifest.json", KeyKind.OUTPUT),
        ("other/photo.jpg", KeyKind.OUTSIDE_INPUT),
        ("uploads/folder/", KeyKind.OUTSIDE_INPUT),
    ],
)
def test_classify(key, kind):
    assert classify(key, "uploads/", "reframed/") is kind


def test_output_inside_input_prefix_is_still_output():
    # OUTPUT_PREFIX may sit under INPUT_PREFIX: outputs must never be processed again.
    assert classify("uploads/out/x.jpg/a.png", "uploads/", "uploads/out/") is KeyKind.OUTPUT
