"""The review gallery in a real browser: headless Chromium (Debian's ``chromium``, driven by Playwright with
the system executable) loads the page ``reframe serve`` prints, finds every variant, filters, clicks
regenerate and sees the new variant arrive through the normal event path."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from reframe_cli.samples import IMAGES
from reframe_local import servers

from .browser import NEEDS_BROWSER, new_page
from .conftest import clean_env
from .test_serve import START_TIMEOUT_S, WORK_TIMEOUT_S, Output

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = NEEDS_BROWSER

EVIL = "uploads/<script>alert(1)</script>.jpg"
PLAIN = "uploads/shoot/rocket.jpg"  # no sidecar of its own: the folder default applies
BROKEN = "uploads/broken.png"
TIMEOUT_MS = WORK_TIMEOUT_S * 1000


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, str, Output]]:
    """``reframe serve`` as a child process: the gallery's URL, moto's endpoint, and its output."""
    process = subprocess.Popen(
        [sys.executable, "-m", "reframe_cli.cli", "serve", "--pollers", "2"],
        env={**clean_env(), "TMPDIR": str(tmp_path)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        output = Output(process)
        gallery = output.wait_for(r"review gallery: (http://127\.0\.0\.1:\d+/)", START_TIMEOUT_S).group(1)
        endpoint = output.wait_for(r"export AWS_ENDPOINT_URL=(\S+)", 5).group(1)
        yield gallery, endpoint, output
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(30)


@pytest.fixture
def page() -> Iterator[Page]:
    with new_page() as opened:
        yield opened


def test_page_shows_every_variant_filters_and_regenerate_brings_a_new_one(
    served: tuple[str, str, Output], page: Page, tmp_path: Path
) -> None:
    shots = tmp_path
    gallery, endpoint, output = served
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(gallery)
    assert page.locator("main").inner_text() == "No manifests yet."

    s3: Any = servers.client("s3", endpoint)
    rocket = (IMAGES / "rocket.jpg").read_bytes()
    # The invalid sidecar first, handled before its image comes: each source then gets one event, one manifest.
    bad_sidecar = b'{"version":1,"targets":[{"resolution":"1x1"}]}'
    s3.put_object(Bucket="reframe-local", Key=BROKEN + ".reframe.json", Body=bad_sidecar)
    output.wait_for(re.escape(BROKEN) + r" \(sidecar created\) → waiting for the image", WORK_TIMEOUT_S)
    s3.put_object(Bucket="reframe-local", Key=EVIL, Body=rocket)  # the folder default: two variants each
    s3.put_object(Bucket="reframe-local", Key=PLAIN, Body=rocket)
    s3.put_object(Bucket="reframe-local", Key=BROKEN, Body=(IMAGES / "coffee.png").read_bytes())
    handled: set[str] = set()
    while len(handled) < 3:
        line = output.wait_for(r"^(uploads/\S+) → (2 created, 0 existing, 0 failed|rejected: )", WORK_TIMEOUT_S)
        handled.add(line.group(1))
    assert handled == {EVIL, PLAIN, BROKEN}

    # The page reloads itself as the manifests arrive: no reload from the test.
    page.locator("figure.variant").nth(3).wait_for()
    page.locator("figure.rejected").wait_for()
    sections = page.locator("section.source")
    assert sorted(sections.evaluate_all("els => els.map(e => e.dataset.source)")) == sorted([EVIL, PLAIN, BROKEN])
    assert page.locator(f'section[data-source="{EVIL}"] h2').inner_text() == EVIL  # the key as text
    assert page.locator("script").count() == 1  # the page's own poller: no script came from a key
    figures = page.locator("figure.variant")
    assert figures.count() == 4  # the rejected source is one card, not a failed variant
    names = figures.evaluate_all("els => els.map(e => e.dataset.variant)")
    assert sorted(names) == sorted(["1312x736", "instagram-story"] * 2)
    # Every image the page shows has loaded from its presigned URL: the variants, and each source beside them.
    page.wait_for_function("[...document.images].every(i => i.complete && i.naturalWidth > 0)")
    assert page.locator("figure.variant img").count() == 4
    assert page.locator("img.source").count() == 3
    assert "1 source rejected" in page.locator(".totals").inner_text()

    # The filters: only the rejected source (no variant failed), then none flagged.
    page.get_by_role("link", name="failed").click()
    assert [f for f in page.locator("figure.variant").all() if f.is_visible()] == []
    rejected = page.locator("figure.rejected")
    assert rejected.is_visible() and rejected.get_attribute("data-source") == BROKEN
    assert "invalid_sidecar" in rejected.inner_text() and "nothing made for 1x1" in rejected.inner_text()
    assert page.locator(f'section[data-source="{BROKEN}"]').get_by_role("button", name="regenerate").count() == 0
    page.get_by_role("link", name="flagged").click()
    assert [f for f in page.locator("figure.variant").all() if f.is_visible()] == []
    page.get_by_role("link", name="all").click()

    # Regenerate the evil source's story: a new seed in its (new) sidecar, then the new variant.
    story = page.locator(f'section[data-source="{EVIL}"] figure[data-variant="instagram-story"]')
    assert "The local engine ignores the seed" in story.locator(".seed-note").inner_text()  # serve runs it
    before = story.locator("dd").nth(3).inner_text()
    story.get_by_role("button", name="regenerate").click()
    message = page.locator(".message").filter(has_text="instagram-story").inner_text()
    seed = re.search(r"with seed (\d+)", message).group(1)  # type: ignore[union-attr]
    assert seed != before
    story.locator("dd", has_text=re.compile(rf"^{seed}$")).wait_for()
    assert page.locator(".message").count() == 0  # arrived: no longer waiting
    page.wait_for_function("[...document.images].every(i => i.complete && i.naturalWidth > 0)")
    output.wait_for(re.escape(EVIL) + r" \(sidecar created\) → 1 created, 1 existing, 0 failed", WORK_TIMEOUT_S)
    sidecar = s3.get_object(Bucket="reframe-local", Key=EVIL + ".reframe.json")["Body"].read().decode()
    assert f'"seed": {seed}' in sidecar
    assert dialogs == []
    page.screenshot(path=str(shots / "gallery.png"), full_page=True)  # kept in the test's tmp_path
