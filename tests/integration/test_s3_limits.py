"""The moto stand-in refuses, as S3 does, keys over 1024 UTF-8 bytes and user metadata over 2048 bytes."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import quote

import pytest
import requests
from botocore.exceptions import ClientError

from reframe_local import servers
from reframe_local.servers import ServerProcess

BUCKET = "limits"
CJK = "漢"  # three bytes in UTF-8


@pytest.fixture
def s3(moto_reset: ServerProcess) -> Any:
    client = servers.client("s3", moto_reset.url)
    client.create_bucket(Bucket=BUCKET)
    return client


def refused_code(call: Any, **kwargs: Any) -> str:
    with pytest.raises(ClientError) as caught:
        call(Bucket=BUCKET, **kwargs)
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    return str(caught.value.response["Error"]["Code"])


@pytest.mark.parametrize(
    ("key", "accepted"),
    [
        ("k" * 1024, True),
        ("k" * 1025, False),
        ("a" + CJK * 341, True),  # 1024 bytes in 342 characters
        (CJK * 342, False),  # 1026 bytes in 342 characters
    ],
)
def test_key_length_in_utf8_bytes(s3: Any, key: str, accepted: bool) -> None:
    if accepted:
        s3.put_object(Bucket=BUCKET, Key=key, Body=b"x")
        assert s3.get_object(Bucket=BUCKET, Key=key)["Body"].read() == b"x"
    else:
        assert refused_code(s3.put_object, Key=key, Body=b"x" * 100_000) == "KeyTooLongError"
        assert s3.list_objects_v2(Bucket=BUCKET)["KeyCount"] == 0


@pytest.mark.parametrize(("value_length", "accepted"), [(2047, True), (2048, False)])
def test_metadata_size_counts_names_and_values(s3: Any, value_length: int, accepted: bool) -> None:
    metadata = {"n": "v" * value_length}  # one byte of name
    if accepted:
        s3.put_object(Bucket=BUCKET, Key="meta", Body=b"x", Metadata=metadata)
        assert s3.head_object(Bucket=BUCKET, Key="meta")["Metadata"] == metadata
    else:
        assert refused_code(s3.put_object, Key="meta", Body=b"x", Metadata=metadata) == "MetadataTooLarge"


def test_quoted_cjk_key_as_metadata_is_too_large(s3: Any) -> None:
    # 240 characters: a valid key (720 bytes), but 2160 bytes once percent-encoded as a header value.
    key = "uploads/" + CJK * 240
    s3.put_object(Bucket=BUCKET, Key=key, Body=b"x")
    metadata = {"source-key": quote(key)}
    assert refused_code(s3.put_object, Key="variant.png", Body=b"x", Metadata=metadata) == "MetadataTooLarge"
    # The same client carries on over its kept-alive connection.
    assert s3.head_object(Bucket=BUCKET, Key=key)["ContentLength"] == 1


def test_copy_and_multipart_are_held_to_the_limits(s3: Any) -> None:
    s3.put_object(Bucket=BUCKET, Key="source", Body=b"x")
    source = {"Bucket": BUCKET, "Key": "source"}
    assert refused_code(s3.copy_object, Key="k" * 1025, CopySource=source) == "KeyTooLongError"
    big = {"n": "v" * 2048}
    replace = {"MetadataDirective": "REPLACE", "Metadata": big}
    assert refused_code(s3.copy_object, Key="copy", CopySource=source, **replace) == "MetadataTooLarge"
    assert refused_code(s3.create_multipart_upload, Key="k" * 1025) == "KeyTooLongError"
    assert refused_code(s3.create_multipart_upload, Key="multi", Metadata=big) == "MetadataTooLarge"
    s3.copy_object(Bucket=BUCKET, Key="copy", CopySource=source)
    assert [item["Key"] for item in s3.list_objects_v2(Bucket=BUCKET)["Contents"]] == ["copy", "source"]


def test_post_upload_is_held_to_the_limits(s3: Any) -> None:
    def post(key: str, **fields: str) -> requests.Response:
        form = s3.generate_presigned_post(BUCKET, key, Fields=fields, Conditions=[[k, v] for k, v in fields.items()])
        return requests.post(form["url"], data=form["fields"], files={"file": ("a.txt", b"posted")}, timeout=10)

    assert post("k" * 1025).status_code == 400
    refused = post("meta", **{"x-amz-meta-n": "v" * 2048})
    assert refused.status_code == 400
    assert "<Code>MetadataTooLarge</Code>" in refused.text
    assert post("posted", **{"x-amz-meta-n": "v" * 2047}).status_code in (200, 204)
    assert s3.get_object(Bucket=BUCKET, Key="posted")["Body"].read() == b"posted"
    assert s3.list_objects_v2(Bucket=BUCKET)["KeyCount"] == 1


def test_normal_use_is_untouched(s3: Any, moto_reset: ServerProcess) -> None:
    key = "uploads/a b+c/ünï 漢.jpg"
    s3.put_object(Bucket=BUCKET, Key=key, Body=b"image", Metadata={"source-key": quote(key)})
    url = s3.generate_presigned_url("get_object", Params={"Bucket": BUCKET, "Key": key}, ExpiresIn=60)
    response = requests.get(url, timeout=10)
    assert response.status_code == 200
    assert response.content == b"image"
    assert response.headers["x-amz-meta-source-key"] == quote(key)
    # Other services on the same port, and moto's own API.
    sqs = servers.client("sqs", moto_reset.url)
    assert sqs.create_queue(QueueName="q" * 80)["QueueUrl"].endswith("q" * 80)
    assert requests.get(f"{moto_reset.url}/moto-api/", timeout=10).status_code == 200


def test_a_conditional_write_has_one_winner_among_concurrent_writers(moto_reset: ServerProcess) -> None:
    # DynamoDB makes a conditional write atomic; moto alone lets two concurrent writers pass one condition.
    dynamodb = servers.client("dynamodb", moto_reset.url)
    dynamodb.create_table(
        TableName="race",
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    writers = 8

    def claim(slot: str, barrier: threading.Barrier, holder: int) -> bool:
        barrier.wait()
        try:
            dynamodb.update_item(
                TableName="race",
                Key={"id": {"S": slot}},
                UpdateExpression="SET holder = :holder",
                ConditionExpression="attribute_not_exists(holder)",
                ExpressionAttributeValues={":holder": {"S": str(holder)}},
            )
        except dynamodb.exceptions.ConditionalCheckFailedException:
            return False
        return True

    with ThreadPoolExecutor(writers) as pool:
        for trial in range(300):
            barrier = threading.Barrier(writers)
            slots = [f"slot-{trial}"] * writers
            wins = list(pool.map(claim, slots, [barrier] * writers, range(writers)))
            assert sum(wins) == 1, f"trial {trial}: {sum(wins)} writers passed one condition"
