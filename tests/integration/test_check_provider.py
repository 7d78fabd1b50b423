"""``reframe check-provider`` against the emulator: one cheapest call, what came back, never the key."""

from __future__ import annotations

import pytest
import requests

from reframe_cli.cli import main
from reframe_local.servers import ServerProcess

from ..conftest import EMULATOR_API_KEY

WRONG_KEY = "sk-check-WRONG-0000-1234"


@pytest.fixture
def emu(fresh_emulator: ServerProcess, monkeypatch: pytest.MonkeyPatch) -> str:
    for name in (
        "REFRAME_PROVIDER",
        "SEGMIND_API_KEY_SECRET",
        "IDEOGRAM_API_KEY_SECRET",
        "PRICE_TABLE",
        "SEGMIND_API_MODE",
    ):
        monkeypatch.delenv(name, raising=False)
    url = fresh_emulator.url
    monkeypatch.setenv("SEGMIND_API_URL", f"{url}/v1/ideogram-3-reframe")
    monkeypatch.setenv("SEGMIND_API_KEY", EMULATOR_API_KEY)
    monkeypatch.setenv("IDEOGRAM_API_URL", f"{url}/v1/ideogram-v3/reframe")
    monkeypatch.setenv("IDEOGRAM_API_KEY", EMULATOR_API_KEY)
    return url


def stats(emu: str) -> dict:
    return requests.get(f"{emu}/_emulator/stats", timeout=10).json()


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["check-provider", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.parametrize("mode", ["auto", "sync"])
def test_segmind_one_cheapest_call(emu: str, files: str, capsys, monkeypatch, mode: str):
    monkeypatch.setenv("SEGMIND_API_MODE", mode)
    code, out, _ = run(capsys, "--image-url", f"{files}/astronaut.png")

    assert code == 0, out
    posted = "/v2/ideogram-3-reframe" if mode == "auto" else "/v1/ideogram-3-reframe"
    assert f"POST {emu}{posted} -> HTTP 200" in out
    assert "x-credits-consumed=0.037" in out and "x-remaining-credits=" in out
    assert "result: image/jpeg (jpeg) 512x1536, " in out
    assert "cost: estimated $0.037 (segmind TURBO, PRICE_TABLE); the provider says x-credits-consumed 0.037" in out
    assert out.rstrip().endswith("the answer is what the pipeline expects")
    assert EMULATOR_API_KEY not in out
    numbers = stats(emu)
    assert numbers["billed"] == 1
    (call,) = [c for c in numbers["calls"] if c["resolution"]]
    assert (call["rendering_speed"], call["resolution"], call["source_size"]) == ("TURBO", "512x1536", [512, 512])


def test_ideogram_uploads_a_generated_image(emu: str, capsys):
    code, out, _ = run(capsys, "--provider", "ideogram")

    assert code == 0, out
    assert f"POST {emu}/v1/ideogram-v3/reframe -> HTTP 200, application/json" in out
    assert f"GET {emu}/_emulator/results/" in out
    assert "result: image/jpeg (jpeg) 512x1536" in out
    assert "cost: estimated $0.030 (ideogram TURBO, PRICE_TABLE)\n" in out
    (call,) = stats(emu)["calls"]
    assert (call["endpoint"], call["rendering_speed"], call["source_size"]) == ("ideogram", "TURBO", [512, 512])


def test_dry_run_prints_the_request_with_the_key_masked(emu: str, files: str, capsys, monkeypatch):
    key = "sk-live-0123456789abcdef"
    monkeypatch.setenv("SEGMIND_API_KEY", key)
    monkeypatch.setenv("SEGMIND_API_MODE", "sync")
    code, out, _ = run(capsys, "--dry-run", "--image-url", f"{files}/astronaut.png")

    assert code == 0
    assert f"would send: POST {emu}/v1/ideogram-3-reframe" in out
    assert "x-api-key: ********cdef" in out and "Accept: */*" in out
    assert '"rendering_speed": "TURBO"' in out and '"resolution": "512x1536"' in out
    assert f'"image": "{files}/astronaut.png"' in out
    assert key not in out

    code, out, _ = run(capsys, "--dry-run", "--provider", "ideogram")
    assert code == 0
    assert "Api-Key: ********" in out and EMULATOR_API_KEY not in out
    assert "part rendering_speed (text/plain): TURBO" in out
    assert "part image: file image.png, image/png" in out
    assert stats(emu)["requests"] == 0  # nothing sent


@pytest.mark.parametrize("provider", ["segmind", "ideogram"])
def test_a_refused_key_fails_and_stays_secret(emu: str, files: str, capsys, monkeypatch, provider: str):
    monkeypatch.setenv(f"{provider.upper()}_API_KEY", WRONG_KEY)
    args = ["--provider", provider] + (["--image-url", f"{files}/astronaut.png"] if provider == "segmind" else [])
    code, out, err = run(capsys, *args)

    assert code == 1
    assert "-> HTTP 401" in out
    assert "FAILED (http_401): HTTP 401: invalid key ***" in out
    assert WRONG_KEY not in out + err  # the emulator echoed it in its answer
    assert stats(emu)["billed"] == 0


def test_an_account_condition_is_reported(emu: str, capsys):
    requests.post(f"{emu}/_emulator/faults", json={"script": ["402"]}, timeout=10).raise_for_status()
    code, out, _ = run(capsys, "--provider", "ideogram")
    assert code == 1
    assert "FAILED (http_402): HTTP 402: payment required: insufficient_funds" in out
    assert len(stats(emu)["calls"]) == 1  # once, never retried


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (["--provider", "segmind"], {}, "give --image-url"),
        (["--provider", "ideogram", "--image-url", "https://x.example/a.png"], {}, "--image-url is for Segmind"),
        ([], {"REFRAME_PROVIDER": "local"}, "nothing to check"),
        (["--provider", "ideogram"], {"IDEOGRAM_API_KEY": ""}, "no API key for ideogram"),
    ],
)
def test_what_cannot_be_checked_says_why(emu: str, capsys, monkeypatch, args, env, message):
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    code, out, err = run(capsys, *args)
    assert code == 2
    assert message in err and out == ""
    assert stats(emu)["requests"] == 0
