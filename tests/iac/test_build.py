"""`sam build` output, imported and run the way Lambda does: a fresh interpreter whose sys.path
holds only the function's build directory, the layer's python/ and (standing in for the runtime's
own packages) boto3/botocore, with no site-packages. The built handler then runs on the sample
events against a moto server, with the offline `local` provider.

The build targets this machine's architecture (see HOST_ARCH in conftest.py): the production
layer's arm64 wheels would not import on an x86_64 host.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import unquote_plus

import boto3
import pytest

from .conftest import EVENTS, HOST_ARCH, REGION, ROOT

BUCKET = "reframe-demo-bucket"
SIDECAR = {"version": 1, "targets": [{"aspect_ratio": "16:9"}, {"size": "600x600", "name": "square"}]}

# Runs inside the fresh interpreter (python -I -S): argv = event file, result file, sys.path entries.
RUNNER = r"""
import json, sys, time, uuid
event_path, result_path, *paths = sys.argv[1:]
sys.path[:0] = paths
for name in ("boto3", "botocore", "requests", "pydantic", "PIL", "aws_lambda_powertools"):
    __import__(name)
    module = sys.modules[name]
    assert any(str(module.__file__).startswith(p) for p in paths), (name, module.__file__)
if event_path == "-":
    import pydantic_core, pillow_heif  # the compiled extensions of the layer
    from PIL import Image, features
    from reframe_pipeline.handler import lambda_handler
    json.dump({"imported": callable(lambda_handler), "python": sys.version_info[:2],
               "flags": [sys.flags.isolated, sys.flags.no_site]}, open(result_path, "w"))
    raise SystemExit(0)

class Context:
    function_name = "reframe-pipeline-reframe"
    function_version = "$LATEST"
    memory_limit_in_mb = 1024
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:reframe-pipeline-reframe"
    aws_request_id = str(uuid.uuid4())
    log_group_name = "/aws/lambda/reframe-pipeline-reframe"
    log_stream_name = "test"
    def __init__(self):
        self._end = time.monotonic() + 120
    def get_remaining_time_in_millis(self):
        return max(0, int((self._end - time.monotonic()) * 1000))

from reframe_pipeline.handler import lambda_handler
result = lambda_handler(json.load(open(event_path)), Context())
json.dump(result, open(result_path, "w"))
"""


def lambda_paths(build: Path) -> list[str]:
    """/var/task, /opt/python and the runtime's own packages, in Lambda's order."""
    return [str(build / "ReframeFunction"), str(build / "DependenciesLayer" / "python"), str(build / "_runtime")]


def run_built(build: Path, event: str, result_path: Path, **env: str) -> tuple[Any, str]:
    base = {
        "PATH": "/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "TZ": "UTC",
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    }
    proc = subprocess.run(
        [sys.executable, "-I", "-S", "-c", RUNNER, event, str(result_path), *lambda_paths(build)],
        check=False,
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, f"built handler failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}"
    return json.loads(result_path.read_text()), proc.stdout


def test_build_output(host_build: Path) -> None:
    function = host_build / "ReframeFunction"
    layer = host_build / "DependenciesLayer" / "python"
    assert (function / "reframe_pipeline" / "handler.py").is_file()
    # /var/task is read-only too: the function's own modules come compiled, checked the same way.
    own = list((function / "reframe_pipeline" / "__pycache__").glob("handler.cpython-312.pyc"))
    assert own and int.from_bytes(own[0].read_bytes()[4:8], "little") == 1
    assert (host_build / "template.yaml").is_file()
    names = {p.name for p in layer.iterdir()}
    assert {"PIL", "pydantic", "pydantic_core", "pillow_heif", "requests", "aws_lambda_powertools"} <= names
    assert not names & {"boto3", "botocore", "s3transfer"}, "the runtime provides boto3/botocore"
    # /opt is read-only in Lambda: the layer brings its bytecode, hash-based and unchecked (PEP 552 flags
    # = 1), so it stays valid whatever the file times become in the zip.
    compiled = list((layer / "pydantic" / "__pycache__").glob("__init__.cpython-312.pyc"))
    assert compiled and int.from_bytes(compiled[0].read_bytes()[4:8], "little") == 1
    machine = "aarch64" if HOST_ARCH == "arm64" else "x86_64"
    assert list((layer / "pydantic_core").glob(f"*cpython-312-{machine}-linux-gnu.so"))


def test_built_function_imports_alone(host_build: Path, tmp_path: Path) -> None:
    result, _ = run_built(host_build, "-", tmp_path / "result.json")
    assert result["imported"] is True
    assert result["flags"] == [1, 1]  # isolated, no site-packages
    assert tuple(result["python"]) == (3, 12), "the layer's wheels are for CPython 3.12, like the runtime"


@pytest.fixture
def s3(moto_endpoint: str) -> Any:
    client = boto3.client(
        "s3",
        endpoint_url=moto_endpoint,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    client.create_bucket(Bucket=BUCKET)
    return client


def event_key(name: str) -> str:
    record = json.loads((EVENTS / name).read_text())["Records"][0]
    if "body" in record:  # SQS wrapping
        record = json.loads(record["body"])["Records"][0]
    assert record["s3"]["bucket"]["name"] == BUCKET
    return unquote_plus(record["s3"]["object"]["key"])


def keys_under(s3: Any, prefix: str) -> set[str]:
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix)
    return {o["Key"] for page in pages for o in page.get("Contents", [])}


def test_built_handler_on_sample_events(host_build: Path, s3: Any, moto_endpoint: str, tmp_path: Path) -> None:
    env = {
        "AWS_ENDPOINT_URL": moto_endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
        "AWS_LAMBDA_FUNCTION_NAME": "reframe-pipeline-reframe",
        "REFRAME_PROVIDER": "local",
        "INPUT_PREFIX": "uploads/",
        "OUTPUT_PREFIX": "reframed/",
        "POWERTOOLS_SERVICE_NAME": "reframe",
        "POWERTOOLS_METRICS_NAMESPACE": "ReframePipeline",
        "POWERTOOLS_TRACE_DISABLED": "true",  # no X-Ray daemon here
        "LOG_LEVEL": "INFO",
    }
    image = (ROOT / "examples" / "images" / "rocket.jpg").read_bytes()

    # 1. A direct S3 notification for a key with a space, "+" and non-ASCII characters.
    key = event_key("s3-put.json")
    assert key == "uploads/samples/rocket launch été+1.jpg"
    s3.put_object(Bucket=BUCKET, Key=key + ".reframe.json", Body=json.dumps(SIDECAR).encode())
    s3.put_object(Bucket=BUCKET, Key=key, Body=image, ContentType="image/jpeg")
    result, stdout = run_built(host_build, str(EVENTS / "s3-put.json"), tmp_path / "r1.json", **env)
    out_dir = "reframed/" + key.removeprefix("uploads/") + "/"
    produced = keys_under(s3, out_dir)
    assert out_dir + "manifest.json" in produced, (result, produced)
    manifest = json.loads(s3.get_object(Bucket=BUCKET, Key=out_dir + "manifest.json")["Body"].read())
    assert manifest["source"]["key"] == key
    assert [v["status"] for v in manifest["variants"]] == ["created", "created"], manifest
    assert {v["key"] for v in manifest["variants"]} <= produced
    assert any(v["key"].startswith(out_dir + "square.") for v in manifest["variants"])
    assert '"VariantsCreated"' in stdout  # the EMF metric document

    # 2. The same kind of upload delivered through SQS: a batch response with no failures.
    key = event_key("sqs-s3-put.json")
    s3.put_object(Bucket=BUCKET, Key=key + ".reframe.json", Body=json.dumps(SIDECAR).encode())
    s3.put_object(Bucket=BUCKET, Key=key, Body=image, ContentType="image/jpeg")
    result, _ = run_built(host_build, str(EVENTS / "sqs-s3-put.json"), tmp_path / "r2.json", **env)
    assert result == {"batchItemFailures": []}
    out_dir = "reframed/" + key.removeprefix("uploads/") + "/"
    assert out_dir + "manifest.json" in keys_under(s3, out_dir)

    # 3. Deleting that source takes its variants and manifest with it.
    s3.delete_object(Bucket=BUCKET, Key=key)
    assert event_key("s3-delete.json") == key
    run_built(host_build, str(EVENTS / "s3-delete.json"), tmp_path / "r3.json", **env)
    assert keys_under(s3, out_dir) == set()
