"""The manifest's conditional write over moto's S3: written only over the object as it was read (If-Match), or
only where there was none (If-None-Match); anything else is a WriteConflictError, and nothing is written."""

from __future__ import annotations

import pytest

from reframe_local import servers
from reframe_pipeline.adapters.s3_storage import S3Storage
from reframe_pipeline.domain.errors import WriteConflictError

from .conftest import BUCKET, Stack

KEY = "reframed/photo.jpg/manifest.json"


@pytest.fixture
def storage(stack: Stack, aws_env: str) -> S3Storage:
    return S3Storage(BUCKET, servers.client("s3", aws_env))


def test_a_new_object_is_written_once(storage: S3Storage):
    storage.replace(KEY, b"first", "application/json", None)
    with pytest.raises(WriteConflictError):
        storage.replace(KEY, b"second", "application/json", None)  # another run wrote one first
    assert storage.read_with_etag(KEY)[0] == b"first"


def test_an_object_is_replaced_only_as_it_was_read(storage: S3Storage):
    storage.replace(KEY, b"first", "application/json", None)
    body, etag = storage.read_with_etag(KEY)
    storage.write(KEY, b"another run's", "application/json", {})
    with pytest.raises(WriteConflictError):
        storage.replace(KEY, b"mine", "application/json", etag)
    body, etag = storage.read_with_etag(KEY)
    assert body == b"another run's"
    storage.replace(KEY, b"mine, over theirs", "application/json", etag)
    assert storage.read_with_etag(KEY)[0] == b"mine, over theirs"


def test_an_object_deleted_since_it_was_read_is_a_conflict(storage: S3Storage):
    storage.replace(KEY, b"first", "application/json", None)
    _, etag = storage.read_with_etag(KEY)
    storage.delete([KEY])
    with pytest.raises(WriteConflictError):
        storage.replace(KEY, b"mine", "application/json", etag)
    assert storage.head(KEY) is None
