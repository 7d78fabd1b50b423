"""C2PA Content Credentials (C2PA_SIGNING=on): variants signed through the real path (moto, the emulator), read
back with c2pa-python's Reader, a reader this project did not write, and their XMP with exiftool."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import c2pa
import pytest

from reframe_local import servers
from reframe_local.signing_ca import signer_bundle

from ..exiftool import EXIFTOOL, read_tags
from .conftest import BUCKET, Stack, s3_event, sqs_event
from .test_failure_logs import counted, lines
from .test_promises import ONE, OUT, SOURCE, in_background, wait_at_provider
from .test_provenance import COMPOSITE_WITH_TRAINED, credited_jpeg

MIMES = {"png": "image/png", "jpg": "image/jpeg", "webp": "image/webp", "avif": "image/avif"}
# What a reader says of a chain to a root on no C2PA trust list: the only failure a test CA may cause.
UNTRUSTED = "signingCredential.untrusted"


@pytest.fixture(scope="module")
def bundle() -> str:
    return signer_bundle()


@pytest.fixture
def signing(stack: Stack, tmp_path: Path, bundle: str) -> Stack:
    pem = tmp_path / "signer.pem"
    pem.write_text(bundle)
    stack.configure(C2PA_SIGNING="on", C2PA_SIGNER_FILE=str(pem))
    return stack


def read_credentials(body: bytes, mime: str) -> dict[str, Any]:
    with c2pa.Reader(mime, io.BytesIO(body)) as reader:
        state = reader.get_validation_state()
        document: dict[str, Any] = json.loads(reader.json())
    document["state"] = state
    return document


def active(document: dict[str, Any]) -> dict[str, Any]:
    manifest: dict[str, Any] = document["manifests"][document["active_manifest"]]
    return manifest


def actions(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    (assertion,) = [a for a in manifest["assertions"] if a["label"].startswith("c2pa.actions")]
    found: list[dict[str, Any]] = assertion["data"]["actions"]
    return found


def failures(document: dict[str, Any]) -> list[str]:
    return [status["code"] for status in document["validation_results"]["activeManifest"]["failure"]]


@pytest.mark.parametrize(
    ("fmt", "ext"), [("original", "jpg"), ("png", "png"), ("jpeg", "jpg"), ("webp", "webp"), ("avif", "avif")]
)
def test_signed_variants_validate_with_the_source_as_parent(signing: Stack, tmp_path: Path, fmt: str, ext: str):
    signing.put("uploads/s.jpg", credited_jpeg())
    targets = [{"resolution": "1024x1024"}, {"size": "1200x628", "name": "og"}]  # signed in parallel
    signing.put("uploads/s.jpg.reframe.json", {"version": 1, "output": {"format": fmt}, "targets": targets})

    signing.invoke(s3_event("uploads/s.jpg"))

    variants = signing.read_json("reframed/s.jpg/manifest.json")["variants"]
    assert [v["status"] for v in variants] == ["created", "created"]
    for variant in variants:
        assert variant["provenance"]["signed"] is True
        obj = signing.s3.get_object(Bucket=BUCKET, Key=variant["key"])
        assert obj["Metadata"]["content-credentials"] == "c2pa"
        body = obj["Body"].read()
        document = read_credentials(body, MIMES[ext])
        assert document["state"] == "Valid"
        assert failures(document) == [UNTRUSTED]
        manifest = active(document)
        [parent] = manifest["ingredients"]
        assert (parent["title"], parent["relationship"], parent["format"]) == ("s.jpg", "parentOf", "image/jpeg")
        opened, edited = actions(manifest)
        assert opened["action"] == "c2pa.opened"
        assert edited["action"] == "c2pa.edited"
        assert edited["digitalSourceType"] == COMPOSITE_WITH_TRAINED == variant["provenance"]["digital_source_type"]
        assert edited["softwareAgent"]["name"] == "Ideogram 3.0 Reframe (Segmind)"
        if EXIFTOOL:  # the XMP written before signing is still there, and still read by another reader
            tags = read_tags(body, tmp_path)
            assert tags["XMP-iptcExt:DigitalSourceType"] == COMPOSITE_WITH_TRAINED
            assert tags["XMP-dc:Creator"] == "Jane Photographer"


def test_a_changed_byte_breaks_the_signature(signing: Stack):
    signing.put("uploads/t.jpg", credited_jpeg())
    sidecar = {"version": 1, "output": {"format": "png"}, "targets": [{"resolution": "1024x1024"}]}
    signing.put("uploads/t.jpg.reframe.json", sidecar)
    signing.invoke(s3_event("uploads/t.jpg"))
    [variant] = signing.read_json("reframed/t.jpg/manifest.json")["variants"]
    body = bytearray(signing.s3.get_object(Bucket=BUCKET, Key=variant["key"])["Body"].read())
    body[body.index(b"IDAT") + 100] ^= 0xFF  # a byte of pixel data, outside the credentials

    document = read_credentials(bytes(body), "image/png")

    assert document["state"] == "Invalid"
    assert set(failures(document)) == {UNTRUSTED, "assertion.dataHash.mismatch"}


def test_the_signer_can_come_from_secrets_manager(stack: Stack, aws_env: str, bundle: str):
    secrets = servers.client("secretsmanager", aws_env)
    arn = secrets.create_secret(Name="reframe-c2pa-signer", SecretString=bundle)["ARN"]
    stack.configure(C2PA_SIGNING="on", C2PA_SIGNER_SECRET_ARN=arn)
    stack.put("uploads/m.jpg", credited_jpeg())
    stack.put("uploads/m.jpg.reframe.json", {"version": 1, "targets": [{"resolution": "1024x1024"}]})

    stack.invoke(s3_event("uploads/m.jpg"))

    [variant] = stack.read_json("reframed/m.jpg/manifest.json")["variants"]
    assert variant["provenance"]["signed"] is True
    body = stack.s3.get_object(Bucket=BUCKET, Key=variant["key"])["Body"].read()
    assert failures(read_credentials(body, "image/jpeg")) == [UNTRUSTED]  # the provider's JPEG, as it came


def test_an_existing_variant_says_whether_it_was_signed(stack: Stack, tmp_path: Path, bundle: str):
    stack.put("uploads/e.jpg", credited_jpeg())
    stack.put("uploads/e.jpg.reframe.json", {"version": 1, "targets": [{"resolution": "1024x1024"}]})
    stack.invoke(s3_event("uploads/e.jpg"))  # signing off
    pem = tmp_path / "signer.pem"
    pem.write_text(bundle)
    stack.configure(C2PA_SIGNING="on", C2PA_SIGNER_FILE=str(pem))

    stack.invoke(s3_event("uploads/e.jpg"))  # made before signing was on: not made (nor paid) again

    [variant] = stack.read_json("reframed/e.jpg/manifest.json")["variants"]
    assert (variant["status"], variant["provenance"]["signed"]) == ("existing", False)
    assert stack.stats()["billed"] == 1
    stack.put("uploads/f.jpg", credited_jpeg())
    stack.put("uploads/f.jpg.reframe.json", {"version": 1, "targets": [{"resolution": "1024x1024"}]})
    stack.invoke(s3_event("uploads/f.jpg"))
    stack.invoke(s3_event("uploads/f.jpg"))
    [signed] = stack.read_json("reframed/f.jpg/manifest.json")["variants"]
    assert (signed["status"], signed["provenance"]["signed"]) == ("existing", True)


def test_a_signer_that_fails_leaves_the_paid_variant_unsigned_logged_and_counted(
    stack: Stack, tmp_path: Path, bundle: str, logs: io.StringIO, capsys: pytest.CaptureFixture[str]
):
    key_only = bundle.split("-----BEGIN CERTIFICATE-----", maxsplit=1)[0]  # the key without its certificate chain
    pem = tmp_path / "signer.pem"
    pem.write_text(key_only)
    stack.configure(C2PA_SIGNING="on", C2PA_SIGNER_FILE=str(pem))
    stack.put("uploads/u.jpg", credited_jpeg())
    stack.put("uploads/u.jpg.reframe.json", {"version": 1, "targets": [{"resolution": "1024x1024"}]})

    result = stack.invoke(s3_event("uploads/u.jpg"))

    assert result.get("batchItemFailures", []) == []
    [variant] = stack.read_json("reframed/u.jpg/manifest.json")["variants"]
    assert (variant["status"], variant["provenance"]["signed"]) == ("created", False)
    assert "content-credentials" not in stack.s3.head_object(Bucket=BUCKET, Key=variant["key"])["Metadata"]
    [line] = lines(logs, "variant not signed")
    assert line["level"] == "ERROR"
    assert "1 private key(s) and 0 certificate(s)" in line["error"]
    assert counted(capsys.readouterr().out, "SigningFailures") == 1
    key_body = key_only.splitlines()[1]  # a line of the key's base64
    assert key_body not in logs.getvalue()


def test_a_source_deleted_during_the_call_is_neither_signed_nor_a_signing_failure(
    signing: Stack, capsys: pytest.CaptureFixture[str]
):
    # The parent ingredient is the source itself: it is read after the source is found unchanged, never before.
    signing.configure(SEGMIND_API_MODE="sync")
    signing.put_image(SOURCE)
    signing.put(SOURCE + ".reframe.json", ONE)
    signing.emulator_config(latency_ms=2500)
    create, create_result = in_background(signing, sqs_event(s3_event(SOURCE)))
    wait_at_provider(signing)

    signing.s3.delete_object(Bucket=BUCKET, Key=SOURCE)
    create.join(timeout=60)

    assert create_result == [{"batchItemFailures": []}]
    assert signing.keys(OUT) == []
    assert counted(capsys.readouterr().out, "SigningFailures") == 0
