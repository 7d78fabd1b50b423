"""`reframe serve` as a user runs it: follow the printed instructions, upload, see variants, Ctrl-C."""

from __future__ import annotations

import io
import os
import queue
import re
import shlex
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from PIL import Image

from reframe_cli.samples import IMAGES
from reframe_local import servers

from ..waiting import wait_until
from .conftest import Receiver, clean_env

START_TIMEOUT_S = 60.0
WORK_TIMEOUT_S = 60.0


class Output:
    """The lines a child process prints, read on a thread so that waiting for one has a deadline."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.lines: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        assert process.stdout is not None
        self._reader = threading.Thread(target=self._read, args=(process.stdout,), daemon=True)
        self._reader.start()

    def _read(self, stream: io.TextIOBase) -> None:
        for line in stream:
            self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def wait_for(self, pattern: str, timeout_s: float) -> re.Match[str]:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                line = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"no line matching {pattern!r}; got:\n" + "\n".join(self.lines)) from None
            if line is None:
                raise AssertionError(f"output ended before {pattern!r}; got:\n" + "\n".join(self.lines))
            self.lines.append(line)
            if match := re.search(pattern, line):
                return match


@pytest.fixture
def serve(tmp_path: Path, receiver: Receiver) -> Iterator[tuple[subprocess.Popen[str], Output]]:
    process = subprocess.Popen(
        [sys.executable, "-m", "reframe_cli.cli", "serve", "--pollers", "2", "--webhook", receiver.url],
        env={**clean_env(), "TMPDIR": str(tmp_path)},  # where it keeps its logs
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        yield process, Output(process)
    finally:
        if process.poll() is None:  # the test failed before stopping it
            process.send_signal(signal.SIGINT)
            process.wait(30)


def test_upload_is_reframed_and_announced_then_sigint_stops_everything(
    serve: tuple[subprocess.Popen[str], Output], tmp_path: Path, receiver: Receiver
) -> None:
    process, output = serve
    export = output.wait_for(r"^\s*export (AWS_ENDPOINT_URL=.*)$", START_TIMEOUT_S).group(1)
    env = dict(pair.split("=", 1) for pair in shlex.split(export))
    one_liner = output.wait_for(r'^\s*(python -c ".*upload_file.*")$', 5).group(1)
    moto_pid = int(re.search(r"\(pid (\d+)\)", "\n".join(output.lines)).group(1))  # type: ignore[union-attr]
    endpoint = env["AWS_ENDPOINT_URL"]

    # The printed boto3 one-liner, run as printed, with the printed settings.
    (tmp_path / "photo.jpg").write_bytes((IMAGES / "rocket.jpg").read_bytes())
    subprocess.run(
        [sys.executable, *shlex.split(one_liner)[1:]],
        env={**clean_env(), **env},
        cwd=tmp_path,
        check=True,
        timeout=60,
    )

    s3 = servers.client("s3", endpoint)
    expected = {"reframed/photo.jpg/1312x736.png": (1312, 736), "reframed/photo.jpg/instagram-story.png": (1080, 1920)}

    def present() -> set[str]:
        listing = s3.list_objects_v2(Bucket="reframe-local", Prefix="reframed/photo.jpg/")
        return {item["Key"] for item in listing.get("Contents", [])}

    wanted = {*expected, "reframed/photo.jpg/manifest.json"}
    wait_until(lambda: wanted <= present(), WORK_TIMEOUT_S, "the variants and the manifest")
    for key, size in expected.items():
        body = s3.get_object(Bucket="reframe-local", Key=key)["Body"].read()
        assert Image.open(io.BytesIO(body)).size == size
    output.wait_for(r"^uploads/photo\.jpg → 2 created, 0 existing, 0 failed \(\d+\.\d s\)$", WORK_TIMEOUT_S)
    # One line per notice the bus delivered, right after its batch's line; the same notice POSTed, signed.
    notice = output.wait_for(
        r"^notice: Reframe Variants Ready: uploads/photo\.jpg completed "
        r"\(2 created, 0 existing, 0 failed, 0 removed\) ([0-9a-f]{32})$",
        5,
    )
    [posted] = receiver.verified("\n".join(output.lines))
    assert posted["data"]["event_id"] == notice.group(1)

    process.send_signal(signal.SIGINT)
    assert process.wait(30) == 0
    output.wait_for(r"^stopped: pollers joined, moto \(pid \d+\) ended", 5)
    with pytest.raises(ProcessLookupError):
        os.kill(moto_pid, 0)
    with pytest.raises(requests.ConnectionError):
        requests.get(endpoint, timeout=5)
