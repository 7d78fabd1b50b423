"""Fixtures for the infrastructure tests: the IaC tool venv, the SAM-transformed template, a
`sam build` for this machine's architecture and a moto server.

The IaC tools (aws-sam-cli, checkov, cfn-lint) live in .venv-iac (`make iac-install`), apart from
the application's .venv whose pins they clash with. A missing tool is a failure with a clear
message, never a silent skip.
"""

from __future__ import annotations

import copy
import fcntl
import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from ..waiting import wait_until

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"
EVENTS = ROOT / "events"
IAC_BIN = ROOT / ".venv-iac" / "bin"
REGION = "us-east-1"
ACCOUNT = "123456789012"
STACK = "reframe-pipeline"

# The architecture of this machine, in Lambda's words. The production layer is built for arm64,
# whose Pillow/pydantic-core/pillow-heif wheels cannot be imported on an x86_64 host; to run the
# built artifacts here, the test build targets the host instead: the template parameter
# (Architecture=...) and the layer makefile's ARCH (environment) are set together, exactly as a
# developer switching the deployment to x86_64 would do.
HOST_ARCH = {"x86_64": "x86_64", "amd64": "x86_64", "aarch64": "arm64", "arm64": "arm64"}[platform.machine().lower()]
# Wheels for HOST_ARCH downloaded by `make iac-install`, so the layer builds without an index.
WHEELHOUSE = ROOT / ".venv-iac" / f"wheelhouse-{HOST_ARCH}"

INSTALL_HINT = "run `make iac-install` (creates .venv-iac with aws-sam-cli, checkov, cfn-lint and a wheelhouse)"


def iac_tool(name: str) -> Path:
    path = IAC_BIN / name
    if not os.access(path, os.X_OK):
        pytest.fail(f"{path.relative_to(ROOT)} is missing: {INSTALL_HINT}", pytrace=False)
    return path


def _sam_app_dir() -> str:
    """A SAM CLI settings directory whose last version check is recent: `sam` then does not ask
    PyPI whether it is out of date (it does so weekly, after a command)."""
    path = Path(tempfile.gettempdir()) / f"reframe-iac-sam-app-{os.getuid()}"
    path.mkdir(exist_ok=True)
    settings = {"lastVersionCheck": time.time(), "telemetryEnabled": False}
    (path / "metadata.json").write_text(json.dumps(settings))
    return str(path)


def tool_env(**extra: str) -> dict[str, str]:
    """Environment for the SAM/lint tools: offline (no telemetry, no update checks, no downloads),
    a region, no AWS profile or credentials."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        SAM_CLI_TELEMETRY="0",
        __SAM_CLI_APP_DIR=_sam_app_dir(),
        CKV_SKIP_PACKAGE_UPDATE_CHECK="true",
        AWS_DEFAULT_REGION=REGION,
        AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
    )
    env.update(extra)
    return env


def run_tool(args: list[str | os.PathLike[str]], timeout: float = 120, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(a) for a in args],
        check=False,
        cwd=ROOT,
        env=tool_env(**env),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


# ----------------------------------------------------------------------------- template


def load_template() -> dict[str, Any]:
    """template.yaml with its short-form tags (!Ref, !Sub ...) as CloudFormation's long forms."""
    from cfnlint.decode import cfn_yaml

    return dict(cfn_yaml.load(str(TEMPLATE)))


def _plain(value: Any) -> Any:
    """cfn-lint's decoder returns str/dict subclasses with line marks: turn them into plain types."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, str):
        return str(value)
    return value


class _NoManagedPolicies:
    """Stands in for the IAM look-up of managed policy names: the template uses only ARNs."""

    def load(self) -> dict[str, str]:
        return {}


@pytest.fixture(scope="session")
def template() -> dict[str, Any]:
    return _plain(load_template())


@pytest.fixture(scope="session")
def transformed(template: dict[str, Any]) -> dict[str, Any]:
    """The template after the SAM transform, as CloudFormation would see it."""
    from samtranslator.translator.transform import transform

    fragment = copy.deepcopy(template)
    for logical_id, resource in fragment["Resources"].items():
        props = resource.get("Properties", {})
        for uri in ("CodeUri", "ContentUri"):
            if isinstance(props.get(uri), str) and not props[uri].startswith("s3://"):
                props[uri] = f"s3://artifacts-bucket/{logical_id}.zip"
    old = os.environ.get("AWS_DEFAULT_REGION")
    os.environ["AWS_DEFAULT_REGION"] = REGION  # the translator's pseudo-parameter values
    try:
        return _plain(transform(fragment, {}, _NoManagedPolicies()))  # type: ignore[arg-type]
    finally:
        if old is None:
            os.environ.pop("AWS_DEFAULT_REGION", None)
        else:
            os.environ["AWS_DEFAULT_REGION"] = old


# ----------------------------------------------------------------------------- sam build


def _shared_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory all pytest-xdist workers of this run share (the base temp's parent under xdist)."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


@pytest.fixture(scope="session")
def host_build(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`sam build` of the whole template for HOST_ARCH, once per test run (xdist workers share it
    under a file lock), from the local wheelhouse with no package index (PIP_NO_INDEX)."""
    sam = iac_tool("sam")
    if not any(WHEELHOUSE.glob("pillow-*.whl")):
        pytest.fail(f"no wheelhouse at {WHEELHOUSE.relative_to(ROOT)}: {INSTALL_HINT}", pytrace=False)
    shared = _shared_dir(tmp_path_factory)
    build_dir = shared / f"sam-build-{HOST_ARCH}"
    done = build_dir / ".built"
    with open(shared / "sam-build.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not done.exists():
            shutil.rmtree(build_dir, ignore_errors=True)
            offline = {"PIP_NO_INDEX": "1", "PIP_FIND_LINKS": str(WHEELHOUSE)}
            result = run_tool(
                [sam, "build", "--template", TEMPLATE, "--build-dir", build_dir,
                 "--parameter-overrides", f"Architecture={HOST_ARCH}"],
                timeout=300, ARCH=HOST_ARCH, PYTHON=str(IAC_BIN / "python"), **offline,
            )  # fmt: skip
            if result.returncode != 0:
                pytest.fail(f"sam build failed:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}", pytrace=False)
            # A stand-in for what the Lambda runtime itself provides: boto3 and botocore.
            runtime = build_dir / "_runtime"
            result = run_tool(
                [IAC_BIN / "python", "-m", "pip", "install", "-q", "--no-compile", "--target", runtime, "boto3"],
                timeout=120, PIP_ROOT_USER_ACTION="ignore", **offline,
            )  # fmt: skip
            if result.returncode != 0:
                pytest.fail(f"installing the runtime's boto3 stand-in failed:\n{result.stderr}", pytrace=False)
            done.touch()
    return build_dir


# ----------------------------------------------------------------------------- moto


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def moto_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A moto server on 127.0.0.1 and a free port; stopped by its pid when the module is done."""
    executable = Path(sys.executable).with_name("moto_server")
    if not executable.exists():
        pytest.fail(f"{executable} is missing: run `make install` (moto[server] is a dev dependency)", pytrace=False)
    port = _free_port()
    log = (tmp_path_factory.mktemp("moto") / "moto.log").open("w")
    proc = subprocess.Popen([str(executable), "-H", "127.0.0.1", "-p", str(port)], stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:

        def answering() -> bool:
            if proc.poll() is not None:
                pytest.fail(f"moto_server did not start (exit code {proc.poll()})", pytrace=False)
            try:
                requests.get(f"{url}/moto-api/", timeout=1)
            except requests.ConnectionError:
                return False
            return True

        wait_until(answering, 20, "moto_server to answer")
        yield url
    finally:
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()
