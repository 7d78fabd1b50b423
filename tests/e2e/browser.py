"""Headless Chromium for the browser tests: Debian's chromium, driven by Playwright (no browser download)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from playwright.sync_api import Page

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
try:
    from playwright.sync_api import sync_playwright
except ImportError:  # the dev extras not installed
    sync_playwright = None  # type: ignore[assignment]

# A browser test's module sets ``pytestmark = NEEDS_BROWSER``: it skips, saying why, where either is missing.
NEEDS_BROWSER = [
    pytest.mark.skipif(sync_playwright is None, reason="playwright is not installed (make install)"),
    pytest.mark.skipif(
        CHROMIUM is None,
        reason="no chromium on this machine (apt-get install -y chromium; CI installs it in .ci/run)",
    ),
]


@contextmanager
def new_page(**options: Any) -> Iterator[Page]:
    """A page of a headless Chromium of its own (``options``: Playwright's, e.g. the viewport), closed after."""
    assert sync_playwright is not None and CHROMIUM is not None
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        try:
            yield browser.new_page(**options)
        finally:
            browser.close()
