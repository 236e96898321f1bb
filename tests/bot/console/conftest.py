"""The console's fixtures: the app served over HTTP with MIANZI_PUBLIC_URL set, a program with an admin."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page
from sqlalchemy import Engine

from bot.settings import get_settings
from bot.web.app import create_app
from models.db import session_scope
from tests.support import builders as b
from tests.support.browser import tab
from tests.support.console_web import PUBLIC_URL
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


@pytest.fixture
def page(browser: Browser, site: httpx.Client, request: pytest.FixtureRequest) -> Iterator[Page]:
    """A fresh browser profile on the live console (`page.goto("/admin/…")`), a laptop's screen."""
    with tab(browser, str(site.base_url), request, viewport={"width": 1280, "height": 900},
             accept_downloads=True) as opened:
        yield opened
