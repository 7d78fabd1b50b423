"""A mistake on the command line gets one line saying what is wrong and how to fix it, and exit status 2;
`--verbose` adds the traceback."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from reframe_cli.cli import CANNOT_RUN, main
from reframe_pipeline.settings import Settings

from ..cli_settings import clear_settings, sidecar_file

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def default_settings(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """The defaults, whatever the developer's shell sets."""
    clear_settings(monkeypatch)
    return monkeypatch


@pytest.fixture
def sidecar(tmp_path: Path) -> str:
    return sidecar_file(tmp_path)


def one_line_error(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    """Runs the command; checks that it could not run and said why in one line (no traceback)."""
    assert main(list(argv)) == CANNOT_RUN
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.endswith("\n"), err
    assert err.startswith(f"reframe {argv[0]}: ")
    return err


@pytest.mark.parametrize(
    ("env", "fragment"),
    [
        ({"REFRAME_PROVIDER": "foo"}, "REFRAME_PROVIDER: Input should be 'segmind', 'ideogram' or 'local'"),
        ({"MAX_PARALLEL_CALLS": "0"}, "MAX_PARALLEL_CALLS: Input should be greater than or equal to 1"),
        (
            {"DAILY_BUDGET_USD": "5"},
            "settings (environment variables): DAILY_BUDGET_USD is counted in the idempotency table: "
            "set IDEMPOTENCY_TABLE too",
        ),
        ({"DEFAULT_SIDECAR": '{"version": 1, "targets": []}'}, "DEFAULT_SIDECAR: targets:"),
    ],
)
def test_an_invalid_setting(capsys, default_settings, sidecar, env, fragment):
    for name, value in env.items():
        default_settings.setenv(name, value)
    assert fragment in one_line_error(capsys, "validate", sidecar)


def test_invoke_with_a_missing_event_file(capsys, tmp_path):
    missing = tmp_path / "nope.json"
    assert one_line_error(capsys, "invoke", "--event", str(missing)) == (
        f"reframe invoke: {missing}: No such file or directory\n"
    )


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        ("{not json", "not a JSON event (Expecting property name"),
        (b"\xff\xfe", "not a JSON event"),
        ('["a list"]', "not an event the handler takes: event is not a JSON object"),
        ('{"detail-type": "x"}', "not an event the handler takes: event has neither 'Records' nor"),
    ],
)
def test_invoke_with_a_malformed_event_file(capsys, tmp_path, content, fragment):
    path = tmp_path / "event.json"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    err = one_line_error(capsys, "invoke", "--event", str(path))
    assert fragment in err
    assert err.rstrip().endswith("see events/ for one sample of each shape")


def test_invoke_with_a_timeout_too_short_for_any_call(capsys, default_settings):
    event = str(ROOT / "events" / "s3-put.json")
    err = one_line_error(capsys, "invoke", "--event", event, "--timeout", "30")
    assert "--timeout 30 is too short" in err
    assert "CALL_BUDGET_MS + UPLOAD_RESERVE_MS (65 s)" in err and "give --timeout 65 or more" in err
    # Follows the settings.
    default_settings.setenv("UPLOAD_RESERVE_MS", "15000")
    assert "give --timeout 75 or more" in one_line_error(capsys, "invoke", "--event", event, "--timeout", "70")


def test_invoke_help_says_what_the_timeout_must_leave(capsys):
    with pytest.raises(SystemExit):
        main(["invoke", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "at least CALL_BUDGET_MS + UPLOAD_RESERVE_MS" in help_text


@pytest.mark.parametrize("url", ["http://bucket/uploads/", "bucket/uploads/", "s3:///uploads/"])
def test_backfill_with_a_url_that_is_not_s3(capsys, url):
    err = one_line_error(capsys, "backfill", url, "--dry-run")
    assert f"{url!r} is not an S3 location: give s3://BUCKET or s3://BUCKET/PREFIX" in err


def test_verbose_adds_the_traceback(capsys, tmp_path):
    assert main(["invoke", "--verbose", "--event", str(tmp_path / "nope.json")]) == CANNOT_RUN
    err = capsys.readouterr().err
    assert err.startswith("Traceback (most recent call last):")
    assert "FileNotFoundError" in err
    assert err.splitlines()[-1] == f"reframe invoke: {tmp_path / 'nope.json'}: No such file or directory"


def test_a_bug_keeps_its_traceback(monkeypatch):
    from reframe_cli import validate

    def broken(*args: object) -> int:
        raise KeyError("a bug")

    monkeypatch.setattr(validate, "run", broken)
    with pytest.raises(KeyError):
        main(["validate", "x.json"])


@pytest.mark.parametrize("command", ["serve", "demo"])
@pytest.mark.parametrize(
    "url", ["http://localhost:8000/hooks", "http://[::1]:8000/", "http://192.168.1.5/hook", "ftp://127.0.0.1/"]
)
def test_a_webhook_the_settings_refuse_is_explained_before_anything_starts(capsys, monkeypatch, command, url):
    from reframe_cli import demo, serve

    def started(*args: object, **kwargs: object) -> int:
        raise AssertionError("the stack started")

    monkeypatch.setattr(serve, "run", started)
    monkeypatch.setattr(demo, "run", started)
    err = one_line_error(capsys, command, "--webhook", url)
    assert err == (
        f"reframe {command}: --webhook {url}: refused: a webhook is an https URL; only these local commands also take"
        " a receiver on this machine as plain http at the loopback address itself, http://127.0.0.1:PORT/PATH (not a"
        " name such as localhost, which is resolved when sending and could lead elsewhere); a deployed function"
        " takes https only\n"
    )
    assert "WEBHOOK_URL" not in os.environ


@pytest.mark.parametrize("url", ["http://127.0.0.1:8000/hooks", "https://hooks.example.com/reframe"])
def test_a_webhook_the_settings_take_is_set_for_the_handler(monkeypatch, url):
    from reframe_cli.local_webhook import post_notices_to

    for name in ("WEBHOOK_URL", "WEBHOOK_SECRET", "WEBHOOK_ALLOW_LOOPBACK_FOR_TESTS"):
        monkeypatch.delenv(name, raising=False)
    secret = post_notices_to(url)
    assert (os.environ["WEBHOOK_URL"], os.environ["WEBHOOK_SECRET"]) == (url, secret)
    assert Settings.from_env().webhook_url == url
