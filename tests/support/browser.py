"""Debian's Chromium under Playwright for the web pages' tests (never a browser Playwright downloads).

`tests/conftest.py` gives every test module a `browser` (skipped where /usr/bin/chromium is missing)
and keeps each test's report on it; `tab(browser, base_url, request, …)` opens a fresh profile on
the live app and, when the test failed, leaves a screenshot of the page in `ARTIFACTS`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

CHROMIUM = Path("/usr/bin/chromium")
# As this machine's probe starts it: headless, no sandbox (root), no calls out of a closed network.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
ARTIFACTS = Path(os.environ.get("MIANZI_TEST_ARTIFACTS", ".test-artifacts"))


def chromium() -> Iterator[Browser]:
    """The browser, for a fixture to yield from; a skip where Chromium is not installed."""
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@contextmanager
def tab(browser: Browser, base_url: str, request: pytest.FixtureRequest, **options: Any) -> Iterator[Page]:
    """A page in a fresh browser profile on `base_url` (Chinese unless `locale` is given); its
    screenshot in `ARTIFACTS` when the test failed."""
    context = browser.new_context(base_url=base_url, **{"locale": "zh-CN", **options})
    context.set_default_timeout(15_000)
    page = context.new_page()
    try:
        yield page
    finally:
        report = getattr(request.node, "report_call", None)
        if report is not None and report.failed:
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / f"{request.node.name}.png"), full_page=True)
        context.close()
