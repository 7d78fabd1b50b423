"""`reframe backfill` against moto: a wrong bucket, queue, prefix or missing credentials get one line
saying what is wrong, and exit status 2."""

from __future__ import annotations

import pytest

from reframe_cli.cli import CANNOT_RUN, main

from .conftest import BUCKET, Stack

SIDECAR = {"version": 1, "targets": [{"resolution": "1536x640"}]}


@pytest.fixture
def bucket(stack: Stack) -> Stack:
    stack.put_image("uploads/a.jpg")
    stack.put("uploads/a.jpg.reframe.json", SIDECAR)
    return stack


def one_line_error(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    assert main(["backfill", *argv]) == CANNOT_RUN
    captured = capsys.readouterr()
    assert captured.err.count("\n") == 1, captured.err
    assert captured.err.startswith("reframe backfill: ")
    return captured.err


def test_a_missing_bucket(bucket: Stack, capsys):
    err = one_line_error(capsys, "s3://no-such-bucket/uploads/", "--dry-run")
    assert "s3://no-such-bucket/uploads/: The specified bucket does not exist (NoSuchBucket)" in err


def test_a_wrong_queue(bucket: Stack, capsys, aws_env: str):
    queue_url = f"{aws_env}/000000000000/no-such-queue"
    err = one_line_error(capsys, f"s3://{BUCKET}/uploads/", "--queue", queue_url)
    assert f"--queue {queue_url}: " in err
    assert "does not exist" in err
    assert err.rstrip().endswith("give the pipeline queue's URL (the stack's QueueUrl output)")


@pytest.mark.parametrize("prefix", ["other/", "reframed/", "uploadsX/"])
def test_a_prefix_outside_the_input_prefix(bucket: Stack, capsys, prefix: str):
    err = one_line_error(capsys, f"s3://{BUCKET}/{prefix}", "--dry-run")
    assert f"s3://{BUCKET}/{prefix} is outside the input prefix 'uploads/'" in err
    assert capsys.readouterr().out == ""


@pytest.mark.parametrize("prefix", ["", "up", "uploads", "uploads/a"])
def test_prefixes_that_reach_the_input_prefix_are_surveyed(bucket: Stack, capsys, prefix: str):
    assert main(["backfill", f"s3://{BUCKET}/{prefix}", "--dry-run"]) == 0
    assert "images found                 1" in capsys.readouterr().out


def test_no_credentials(bucket: Stack, capsys, monkeypatch: pytest.MonkeyPatch):
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    bucket.configure()
    err = one_line_error(capsys, f"s3://{BUCKET}/uploads/", "--dry-run")
    assert "Unable to locate credentials: configure AWS access (aws configure, AWS_PROFILE)" in err
