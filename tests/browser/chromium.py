"""Debian's Chromium, launched headless for one fixture's lifetime: the one way the browser
tests start it (flags in test_admin_preview.CHROMIUM_ARGS; never a downloaded browser)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from playwright.sync_api import Browser, sync_playwright

from tests.browser.test_admin_preview import CHROMIUM, CHROMIUM_ARGS


@contextmanager
def launched() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield browser
        finally:
            browser.close()
