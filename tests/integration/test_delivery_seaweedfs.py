"""Delivery against SeaweedFS, which (unlike moto) checks SigV4: the handler reads the source and writes its
state in one bucket and the deliverables, with their headers, in a second one, every request signed; the
emulator fetches the source by its presigned URL. The deliverables read back with a wrong secret are refused."""

from __future__ import annotations

import json
import os
import secrets
from typing import Any

import pytest
from botocore.exceptions import ClientError

from reframe_local import servers
from reframe_local.lambda_context import LocalContext
from reframe_local.servers import ServerProcess
from reframe_pipeline import handler

from ..conftest import EMULATOR_API_KEY
from .conftest import IMAGES, s3_event, sqs_event

SOURCE = "uploads/hero.png"


@pytest.fixture
def weed_env(weed_server: ServerProcess, fresh_emulator: ServerProcess, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The handler pointed at SeaweedFS with its credentials, and two buckets there."""
    for name in list(os.environ):
        if name.startswith("AWS_ENDPOINT_URL_"):
            monkeypatch.delenv(name)
    env = {
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_ENDPOINT_URL": weed_server.url,
        "AWS_ACCESS_KEY_ID": weed_server.access_key,
        "AWS_SECRET_ACCESS_KEY": weed_server.secret_key,
        "AWS_DEFAULT_REGION": servers.REGION,
        "AWS_REGION": servers.REGION,
        "REFRAME_PROVIDER": "segmind",
        "SEGMIND_API_URL": f"{fresh_emulator.url}/v1/ideogram-3-reframe",
        "SEGMIND_API_KEY": EMULATOR_API_KEY,
        "SOURCE_CHECK": "off",
        "OUTPUT_KEY_TEMPLATE": "site/{path}/{name}-{width}.{ext}",
        "CACHE_CONTROL": "public, max-age=600",
    }
    source, output = f"src-{secrets.token_hex(4)}", f"out-{secrets.token_hex(4)}"
    for name, value in {**env, "OUTPUT_BUCKET": output}.items():
        monkeypatch.setenv(name, value)
    s3 = weed_server.client("s3")
    s3.create_bucket(Bucket=source)
    s3.create_bucket(Bucket=output)
    handler.reset()
    yield s3, source, output
    handler.reset()


def test_deliverables_written_signed_to_the_second_bucket(weed_env: Any, weed_server: ServerProcess) -> None:
    s3, source, output = weed_env
    s3.put_object(Bucket=source, Key=SOURCE, Body=(IMAGES / "astronaut.png").read_bytes())
    sidecar = {
        "version": 1,
        "targets": [{"size": "640x360", "name": "hero", "widths": [320]}],
        "output": {"formats": ["webp", "png"]},
    }
    s3.put_object(Bucket=source, Key=SOURCE + ".reframe.json", Body=json.dumps(sidecar).encode())
    result = handler.lambda_handler(sqs_event(s3_event(SOURCE, bucket=source)), LocalContext(timeout_s=120))
    assert result == {"batchItemFailures": []}
    manifest = json.loads(s3.get_object(Bucket=source, Key="reframed/hero.png/manifest.json")["Body"].read())
    (hero,) = manifest["variants"]
    assert hero["status"] == "created" and manifest["output_bucket"] == output
    keys = sorted(r["key"] for r in hero["renditions"])
    assert keys == [
        "site/hero.png/hero-320.png",
        "site/hero.png/hero-320.webp",
        "site/hero.png/hero-640.png",
        "site/hero.png/hero-640.webp",
    ]
    listed = s3.list_objects_v2(Bucket=output)["Contents"]
    assert sorted(item["Key"] for item in listed) == keys
    for rendition in hero["renditions"]:
        head = s3.head_object(Bucket=output, Key=rendition["key"])
        assert head["ContentType"] == f"image/{rendition['format']}"
        assert head["CacheControl"] == "public, max-age=600"
        assert head["ContentLength"] == rendition["bytes"]
    stranger = servers.client("s3", weed_server.url, weed_server.access_key, "not-the-secret")
    with pytest.raises(ClientError) as refused:
        stranger.get_object(Bucket=output, Key=keys[0])
    assert refused.value.response["Error"]["Code"] == "SignatureDoesNotMatch"
