"""Credential and presigned-URL handling against SeaweedFS, which (unlike moto) checks SigV4."""

from __future__ import annotations

import datetime
import secrets
from collections.abc import Callable
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import botocore.auth
import pytest
import requests
from botocore.exceptions import ClientError

from reframe_local import servers
from reframe_local.servers import ServerProcess

BODY = b"reframe test object\n"
OTHER_BODY = b"another object\n"


@pytest.fixture(scope="module")
def bucket(weed_server: ServerProcess) -> str:
    """A bucket holding ``in/a.txt`` (BODY) and ``in/b.txt`` (OTHER_BODY)."""
    name = f"test-{secrets.token_hex(4)}"
    s3 = weed_server.client("s3")
    s3.create_bucket(Bucket=name)
    s3.put_object(Bucket=name, Key="in/a.txt", Body=BODY)
    s3.put_object(Bucket=name, Key="in/b.txt", Body=OTHER_BODY)
    return name


def presign(server: ServerProcess, bucket: str, key: str, expires_in: int = 900) -> str:
    url: str = server.client("s3").generate_presigned_url(
        "get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=expires_in
    )
    return url


def error_code(response: requests.Response) -> str:
    start = response.text.find("<Code>")
    end = response.text.find("</Code>")
    return response.text[start + len("<Code>") : end] if start >= 0 else ""


def test_signed_put_and_get(weed_server: ServerProcess, bucket: str) -> None:
    s3 = weed_server.client("s3")
    s3.put_object(Bucket=bucket, Key="roundtrip.bin", Body=b"\x00\x01binary")
    assert s3.get_object(Bucket=bucket, Key="roundtrip.bin")["Body"].read() == b"\x00\x01binary"


def test_wrong_secret_is_rejected(weed_server: ServerProcess, bucket: str) -> None:
    s3 = servers.client("s3", weed_server.url, weed_server.access_key, "not-the-secret")
    with pytest.raises(ClientError) as caught:
        s3.get_object(Bucket=bucket, Key="in/a.txt")
    assert caught.value.response["Error"]["Code"] == "SignatureDoesNotMatch"
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403


def test_unknown_access_key_is_rejected(weed_server: ServerProcess, bucket: str) -> None:
    s3 = servers.client("s3", weed_server.url, "AKIAUNKNOWN000000000", weed_server.secret_key)
    with pytest.raises(ClientError) as caught:
        s3.get_object(Bucket=bucket, Key="in/a.txt")
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403


def test_presigned_get_with_plain_requests(weed_server: ServerProcess, bucket: str) -> None:
    response = requests.get(presign(weed_server, bucket, "in/a.txt"), timeout=10)
    assert response.status_code == 200
    assert response.content == BODY


def _flip_signature(url: str) -> str:
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    signature = query["X-Amz-Signature"]
    query["X-Amz-Signature"] = signature[:-1] + ("0" if signature[-1] != "0" else "1")
    return urlunsplit(parts._replace(query=urlencode(query)))


def _other_key(url: str) -> str:
    # An existing object, so that a 403 cannot be a 404 in disguise.
    return url.replace("/in/a.txt?", "/in/b.txt?")


def _longer_expiry(url: str) -> str:
    return url.replace("X-Amz-Expires=900", "X-Amz-Expires=901")


@pytest.mark.parametrize("tamper", [_flip_signature, _other_key, _longer_expiry])
def test_tampered_presigned_url_is_rejected(
    weed_server: ServerProcess, bucket: str, tamper: Callable[[str], str]
) -> None:
    url = presign(weed_server, bucket, "in/a.txt")
    tampered = tamper(url)
    assert tampered != url
    response = requests.get(tampered, timeout=10)
    assert response.status_code == 403
    assert BODY not in response.content and OTHER_BODY not in response.content


def test_anonymous_get_is_rejected(weed_server: ServerProcess, bucket: str) -> None:
    response = requests.get(f"{weed_server.url}/{bucket}/in/a.txt", timeout=10)
    assert response.status_code == 403
    assert response.content != BODY


@pytest.mark.parametrize(("signed_ago", "status"), [(600, 200), (1200, 403)])
def test_presigned_url_expiry(
    weed_server: ServerProcess,
    bucket: str,
    monkeypatch: pytest.MonkeyPatch,
    signed_ago: int,
    status: int,
) -> None:
    # Sign as if earlier: a 900 s URL signed 20 min ago has expired, one signed 10 min ago has not
    # (which shows the 403 is about expiry, not about the date being in the past).
    signed_at = datetime.datetime.now(datetime.UTC) - datetime.timedelta(seconds=signed_ago)
    monkeypatch.setattr(
        botocore.auth, "get_current_datetime", lambda remove_tzinfo=True: signed_at.replace(tzinfo=None)
    )
    response = requests.get(presign(weed_server, bucket, "in/a.txt", expires_in=900), timeout=10)
    assert response.status_code == status
    if status == 403:
        assert error_code(response) == "AccessDenied"
        assert "expired" in response.text


def test_the_pipeline_storage_adapter_signs_correctly(
    weed_server: ServerProcess, bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The function's own S3 client configuration (SigV4, path style, presigning) against a store
    that checks every signature: what moto cannot prove."""
    from reframe_pipeline import handler
    from reframe_pipeline.adapters import s3_storage as storage

    for name, value in {
        "AWS_ENDPOINT_URL": weed_server.url,
        "AWS_ACCESS_KEY_ID": weed_server.access_key,
        "AWS_SECRET_ACCESS_KEY": weed_server.secret_key,
        "AWS_DEFAULT_REGION": servers.REGION,
    }.items():
        monkeypatch.setenv(name, value)
    handler.reset()  # the clients and their session, built again from this environment
    try:
        store = storage.S3Storage(bucket, storage.s3_client())
        key = "uploads/a b/été+1.jpg"
        store.write(key, b"\xff\xd8\xff" + b"x" * 5000, "image/jpeg", {"source-etag": "abc"})

        info = store.head(key)
        assert info is not None and info.size == 5003 and info.metadata == {"source-etag": "abc"}
        assert store.read(key, first_bytes=10) == b"\xff\xd8\xff" + b"x" * 7
        assert [item.key for item in store.list_objects("uploads/")] == [key]
        assert store.head("uploads/missing.jpg") is None
        with pytest.raises(FileNotFoundError):
            store.read("uploads/missing.jpg.reframe.json", first_bytes=100)

        url = store.presign_get(key, 900)
        assert requests.get(url, timeout=10).content.startswith(b"\xff\xd8\xff")
        assert requests.get(url.replace("X-Amz-Signature=", "X-Amz-Signature=0"), timeout=10).status_code == 403

        store.delete([key])
        assert store.head(key) is None
    finally:
        handler.reset()
