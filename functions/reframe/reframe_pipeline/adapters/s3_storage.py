"""The S3 adapter of the storage port."""

from __future__ import annotations

import os
import threading
from functools import lru_cache
from typing import Any
from urllib.parse import urlencode

from botocore.config import Config
from botocore.exceptions import ClientError

from reframe_pipeline.adapters import aws
from reframe_pipeline.application.pipeline import LOOKUP_THREADS
from reframe_pipeline.application.values import ObjectInfo
from reframe_pipeline.domain.errors import BucketWriteError, WriteConflictError
from reframe_pipeline.settings import MOST_PARALLEL_CALLS

_MISSING = {"404", "NoSuchKey", "NotFound"}
# A bucket that is not there, or not ours to write: the same for every key of it.
_CONFLICT = {"PreconditionFailed", "ConditionalRequestConflict"}
_UNWRITABLE = {"NoSuchBucket", "AccessDenied", "AllAccessDisabled", "AccountProblem", "PermanentRedirect"}


# Connections the client keeps: the pipeline's S3 lookups and its uploads (one per provider call in flight,
# MAX_PARALLEL_CALLS: at most 64) can all be in flight at once.
POOL_SIZE = LOOKUP_THREADS + MOST_PARALLEL_CALLS


@lru_cache(maxsize=1)
def s3_client() -> Any:
    """One client per process (thread-safe), with every client's bounded timeouts and retries (adapters/aws.py);
    AWS_ENDPOINT_URL points it at a local stand-in."""
    config = Config(
        signature_version="s3v4",
        max_pool_connections=POOL_SIZE,
        s3={"addressing_style": "path"} if _custom_endpoint() else {},
    )
    # The process's session (adapters/aws.py), not boto3's default one: handler.reset() rebuilds it from the
    # environment of the moment, with its credentials and endpoint.
    return aws.new_client("s3", config)


def _custom_endpoint() -> bool:
    return bool(os.environ.get("AWS_ENDPOINT_URL") or os.environ.get("AWS_ENDPOINT_URL_S3"))


def _version(response: dict[str, Any]) -> str:
    version_id = response.get("VersionId")
    if version_id and version_id != "null":
        return str(version_id)
    return str(response["LastModified"].isoformat())


class S3Storage:
    def __init__(self, bucket: str, client: Any) -> None:
        self.bucket = bucket
        self._client = client
        self._lock = threading.Lock()
        self.bytes_read = 0  # reported as a metric; shows the source is not downloaded needlessly

    def head(self, key: str) -> ObjectInfo | None:
        try:
            response = self._client.head_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in _MISSING:
                return None
            raise
        return ObjectInfo(
            key=key,
            etag=response["ETag"].strip('"'),
            size=response["ContentLength"],
            content_type=response.get("ContentType", ""),
            metadata=response.get("Metadata", {}),
            version=_version(response),
            last_modified=response["LastModified"].timestamp(),
        )

    def read(self, key: str, first_bytes: int | None = None) -> bytes:
        options = {"Range": f"bytes=0-{first_bytes - 1}"} if first_bytes else {}
        try:
            return self._get(key, **options)[0]
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "InvalidRange":  # a range of an empty object
                return b""
            raise

    def read_with_etag(self, key: str) -> tuple[bytes, str]:
        return self._get(key)

    def _get(self, key: str, **options: str) -> tuple[bytes, str]:
        """The object's bytes (counted in ``bytes_read``) and its ETag; FileNotFoundError when there is none."""
        try:
            response = self._client.get_object(Bucket=self.bucket, Key=key, **options)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in _MISSING:
                raise FileNotFoundError(f"s3://{self.bucket}/{key} does not exist") from None
            raise
        body: bytes = response["Body"].read()
        with self._lock:
            self.bytes_read += len(body)
        return body, response["ETag"].strip('"')

    def write(
        self,
        key: str,
        body: bytes,
        content_type: str,
        metadata: dict[str, str],
        tags: dict[str, str] | None = None,
        cache_control: str | None = None,
    ) -> None:
        extra = {"Tagging": urlencode(tags)} if tags else {}
        if cache_control:
            extra["CacheControl"] = cache_control
        try:
            self._client.put_object(
                Bucket=self.bucket, Key=key, Body=body, ContentType=content_type, Metadata=metadata, **extra
            )
        except ClientError as exc:
            error = exc.response.get("Error", {})
            if error.get("Code") in _UNWRITABLE:
                raise BucketWriteError(
                    f"cannot write to bucket {self.bucket!r} ({error.get('Code')}: {error.get('Message', '')})"
                ) from None
            raise

    def replace(self, key: str, body: bytes, content_type: str, etag: str | None) -> None:
        # S3's conditional writes: 412 when the condition fails, 409 when a concurrent conditional write won,
        # 404 for If-Match on an object deleted meanwhile.
        condition = {"IfMatch": f'"{etag}"'} if etag is not None else {"IfNoneMatch": "*"}
        try:
            self._client.put_object(Bucket=self.bucket, Key=key, Body=body, ContentType=content_type, **condition)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code")
            if code in _CONFLICT or (etag is not None and code in _MISSING):
                raise WriteConflictError(f"s3://{self.bucket}/{key} was written by another run meanwhile") from None
            raise

    def presign_get(self, key: str, expires_s: int) -> str:
        url: str = self._client.generate_presigned_url(
            "get_object", Params={"Bucket": self.bucket, "Key": key}, ExpiresIn=expires_s
        )
        return url

    def list_objects(self, prefix: str) -> list[ObjectInfo]:
        found: list[ObjectInfo] = []
        for page in self._client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
            found.extend(
                ObjectInfo(key=item["Key"], etag=item["ETag"].strip('"'), size=item["Size"])
                for item in page.get("Contents", [])
            )
        return found

    def delete(self, keys: list[str]) -> None:
        for start in range(0, len(keys), 1000):
            chunk = keys[start : start + 1000]
            self._client.delete_objects(
                Bucket=self.bucket, Delete={"Objects": [{"Key": key} for key in chunk], "Quiet": True}
            )
