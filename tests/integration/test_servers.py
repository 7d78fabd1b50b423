"""Server processes end when stopped, and report why when they fail to start."""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path

import boto3
import pytest
import requests

from reframe_local import servers


def process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_stop_leaves_no_moto_process(tmp_path: Path) -> None:
    server = servers.start_moto(log_path=tmp_path / "moto.log")
    port = int(server.url.rsplit(":", 1)[1])
    assert requests.get(f"{server.url}/moto-api/", timeout=5).status_code == 200

    server.stop()

    assert server.popen.returncode is not None  # reaped, so not even a zombie is left
    assert not process_exists(server.pid)
    with pytest.raises(requests.ConnectionError):
        requests.get(server.url, timeout=5)
    # The port is free again: nothing listens on it (connections it closed may linger in TIME_WAIT, which
    # SO_REUSEADDR lets a new server bind past, as servers do).
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((servers.HOST, port))
    server.stop()  # idempotent


def test_context_manager_stops(tmp_path: Path) -> None:
    with servers.start_moto(log_path=tmp_path / "moto.log") as server:
        pid = server.pid
    assert not process_exists(pid)


def test_start_failure_reports_log_tail(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # An interpreter that fails at once, as a broken installation would.
    fake = tmp_path / "python"
    fake.write_text("#!/bin/sh\necho 'cannot start: something specific' >&2\nexit 3\n")
    fake.chmod(0o755)
    monkeypatch.setattr(sys, "executable", str(fake))
    with pytest.raises(servers.ServerExitedError, match="something specific") as caught:
        servers.start_moto(log_path=tmp_path / "moto.log")
    assert "code 3" in str(caught.value)


def test_free_port_is_bindable() -> None:
    with socket.socket() as sock:
        sock.bind((servers.HOST, servers.free_port()))


def test_aws_env_points_boto3_at_a_clean_moto(moto_reset: servers.ServerProcess, aws_env: str) -> None:
    assert aws_env == moto_reset.url
    # Configured from the environment alone, as the handlers are.
    s3 = boto3.client("s3")
    assert s3.list_buckets()["Buckets"] == []
    s3.create_bucket(Bucket="env-check")
    names = [b["Name"] for b in servers.client("s3", moto_reset.url).list_buckets()["Buckets"]]
    assert names == ["env-check"]
