"""``reframe check-provider`` before any call: the endpoint it will call, and which mistake it names first."""

from __future__ import annotations

import pytest

from reframe_cli.cli import main
from reframe_pipeline.settings import Settings

V1 = "https://api.segmind.example/v1/ideogram-3-reframe"
KEY = "sk-live-0123456789abcdef"


@pytest.fixture(autouse=True)
def env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in Settings.model_fields:
        monkeypatch.delenv(name.upper(), raising=False)
    monkeypatch.setenv("SEGMIND_API_URL", V1)
    return monkeypatch


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["check-provider", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.parametrize(
    ("mode", "summary", "sent"),
    [
        (
            None,
            "segmind: https://api.segmind.example/v2/ideogram-3-reframe (SEGMIND_API_MODE=auto, then"
            f" {V1} if v2 does not serve the model), key ********cdef;",
            "would send: POST https://api.segmind.example/v2/ideogram-3-reframe",
        ),
        (
            "async",
            "segmind: https://api.segmind.example/v2/ideogram-3-reframe (SEGMIND_API_MODE=async), key",
            "would send: POST https://api.segmind.example/v2/ideogram-3-reframe",
        ),
        ("sync", f"segmind: {V1} (SEGMIND_API_MODE=sync), key", f"would send: POST {V1}"),
    ],
)
def test_dry_run_names_the_endpoint_it_calls(capsys, env, mode, summary, sent):
    env.setenv("SEGMIND_API_KEY", KEY)
    if mode:
        env.setenv("SEGMIND_API_MODE", mode)
    code, out, _ = run(capsys, "--dry-run", "--image-url", "https://images.example/a.png")
    assert code == 0
    first, second = out.splitlines()[:2]
    assert first.startswith(summary)
    assert second == sent
    assert KEY not in out


@pytest.mark.parametrize("args", [["--dry-run"], []])
def test_a_missing_key_is_named_before_a_missing_image_url(capsys, args):
    code, out, err = run(capsys, *args)
    assert code == 2 and out == ""
    assert err == "no API key for segmind: set SEGMIND_API_KEY or SEGMIND_API_KEY_SECRET\n"


def test_with_a_key_a_missing_image_url_is_named(capsys, env):
    env.setenv("SEGMIND_API_KEY", KEY)
    code, _, err = run(capsys, "--dry-run")
    assert code == 2 and err.startswith("Segmind fetches the source itself: give --image-url")
