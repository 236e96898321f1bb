"""The console's fixtures: the app served over HTTP with MIANZI_PUBLIC_URL set, a program with an admin."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, sync_playwright
from sqlalchemy import Engine

from bot.settings import get_settings
from bot.web.app import create_app
from models.db import session_scope
from tests.support import builders as b
from tests.support.console_web import CHROMIUM, CHROMIUM_ARGS, PUBLIC_URL
from tests.support.live_app import live_app, loopback


@pytest.fixture
def admins(engine: Engine) -> None:
    """An admin (BOSS), a second admin, a dealer and a captain in two teams."""
    with session_scope(engine) as s:
        b.partners(s, {"code": "BOSS", "name": "孙经理", "role": "admin"},
                   {"code": "ALT", "name": "李经理", "role": "admin", "locale": "en"},
                   {"code": "P1", "name": "张三", "team": "EAST", "region": "华东"},
                   {"code": "CAP", "name": "王队长", "team": "EAST", "role": "captain", "region": "华东"})


@pytest.fixture
def site(db_url: str, monkeypatch: pytest.MonkeyPatch, admins: None, tmp_path: Path) -> Iterator[httpx.Client]:
    """The app (no background services) over real HTTP; links are built on PUBLIC_URL, uploads and
    invite images go to the test's own folder."""
    loopback(monkeypatch)
    monkeypatch.setenv("MIANZI_PUBLIC_URL", PUBLIC_URL)
    monkeypatch.setenv("MIANZI_MEDIA_DIR", str(tmp_path / "media"))
    get_settings.cache_clear()
    with live_app(create_app(background=False)) as client:
        client.follow_redirects = False
        yield client
    get_settings.cache_clear()


# --- the browser ----------------------------------------------------------------------------------

ARTIFACTS = Path(os.environ.get("MIANZI_TEST_ARTIFACTS", ".test-artifacts"))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """Keep each phase's report on the test, so that `page` knows at teardown whether the test failed."""
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    setattr(item, f"report_{report.when}", report)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Debian's Chromium under Playwright (`.ci/run` installs it); the tests skip where it is missing.

    One per module, not per session: while Playwright's sync API runs, its event loop is the main
    thread's running loop, and a later test's `asyncio.run()` would refuse to start."""
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium)")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Browser, site: httpx.Client, request: pytest.FixtureRequest) -> Iterator[Page]:
    """A fresh browser profile on the live console (`page.goto("/admin/…")`); a screenshot of the
    page is saved in `.test-artifacts/` when the test fails."""
    context = browser.new_context(base_url=str(site.base_url), viewport={"width": 1280, "height": 900},
                                  accept_downloads=True, locale="zh-CN")
    context.set_default_timeout(15_000)
    tab = context.new_page()
    yield tab
    failed = getattr(request.node, "report_call", None)
    if failed is not None and failed.failed:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        tab.screenshot(path=str(ARTIFACTS / f"{request.node.name}.png"), full_page=True)
    context.close()
