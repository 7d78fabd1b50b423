"""C2PA_SIGNING: off by default; on, it needs one signer source; off, c2pa stays out of the process."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from reframe_pipeline.settings import Settings, SettingsError

ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:c2pa-AbCdEf"


def test_signing_is_off_unless_asked_for():
    assert Settings.from_env({}).c2pa_signing == "off"
    # A signer given while signing is off is not checked, and not used.
    assert Settings.from_env({"C2PA_SIGNER_FILE": "/nowhere.pem"}).c2pa_signing == "off"


@pytest.mark.parametrize(
    ("env", "problem"),
    [
        ({}, "needs one of C2PA_SIGNER_SECRET_ARN"),
        ({"C2PA_SIGNER_SECRET_ARN": ""}, "needs one of C2PA_SIGNER_SECRET_ARN"),  # the template's "none"
        ({"C2PA_SIGNER_SECRET_ARN": ARN, "C2PA_SIGNER_FILE": "{pem}"}, "needs one of C2PA_SIGNER_SECRET_ARN"),
        ({"C2PA_SIGNER_FILE": "{missing}"}, "is not a file"),
    ],
)
def test_signing_on_needs_exactly_one_signer(tmp_path: Path, env: dict[str, str], problem: str):
    pem = tmp_path / "signer.pem"
    pem.write_text("-----BEGIN PRIVATE KEY-----\n")
    env = {name: value.format(pem=pem, missing=tmp_path / "missing.pem") for name, value in env.items()}
    with pytest.raises(SettingsError, match=problem):
        Settings.from_env({"C2PA_SIGNING": "on", **env})
    assert Settings.from_env({"C2PA_SIGNING": "on", "C2PA_SIGNER_SECRET_ARN": ARN}).c2pa_signer_secret_arn == ARN
    assert Settings.from_env({"C2PA_SIGNING": "on", "C2PA_SIGNER_FILE": str(pem)}).c2pa_signer_file == str(pem)


def test_with_signing_off_the_handler_never_loads_c2pa():
    # A fresh process, as a cold start: import the handler and build the pipeline the first event uses.
    probe = (
        "import os, sys\n"
        "os.environ.update(REFRAME_PROVIDER='local', AWS_DEFAULT_REGION='us-east-1', C2PA_SIGNING='off')\n"
        "from reframe_pipeline import handler\n"
        "handler.pipeline()\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('c2pa', 'cryptography')))\n"
    )
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert loaded.strip() == "[]"
