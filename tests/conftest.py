"""Fixtures: one database per backend (SQLite always, PostgreSQL when MIANZI_TEST_POSTGRES_URL is set).

Every test that takes `engine` runs on each backend; tables are emptied between tests.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser
from sqlalchemy import Engine, text
from sqlmodel import Session, SQLModel

from bot import context
from bot.migrate import upgrade
from bot.settings import get_settings
from models.db import make_engine
from tests.support.browser import chromium

PG_URL = os.environ.get("MIANZI_TEST_POSTGRES_URL")
# The default (automatic) would start a core process in every test that builds an app or runs
# `mianzi serve`; the tests about that process say so (`core_process=True`, or unset it).
os.environ.setdefault("MIANZI_CORE_PROCESS", "0")
BACKENDS = ["sqlite"] + (["postgresql"] if PG_URL else [])


@pytest.fixture(scope="session")
def _engines(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, tuple[str, Engine]]]:
    engines: dict[str, tuple[str, Engine]] = {}
    sqlite_url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.db'}"
    engines["sqlite"] = (sqlite_url, make_engine(sqlite_url))
    if PG_URL:
        pg = make_engine(PG_URL)
        with pg.begin() as conn:  # a clean slate, whatever an earlier run or branch left behind
            conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
        engines["postgresql"] = (PG_URL, pg)
    for _url, engine in engines.values():
        upgrade(engine)
    yield engines
    for _url, engine in engines.values():
        engine.dispose()


def _empty(engine: Engine) -> None:
    tables = [t.name for t in reversed(SQLModel.metadata.sorted_tables)]
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
        else:
            for name in tables:
                conn.execute(text(f"DELETE FROM {name}"))


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest, _engines: dict, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The URL of an empty, migrated database; the app's settings point at it."""
    url, engine = _engines[request.param]
    _empty(engine)
    monkeypatch.setenv("MIANZI_DATABASE_URL", url)
    monkeypatch.setenv("MIANZI_TIMEZONE", "Asia/Shanghai")
    monkeypatch.setenv("MIANZI_LOCALE", "zh")
    get_settings.cache_clear()
    context.dispose_all()
    yield url
    get_settings.cache_clear()
    context.dispose_all()


@pytest.fixture
def engine(db_url: str, _engines: dict) -> Engine:
    for url, eng in _engines.values():
        if url == db_url:
            return eng
    raise AssertionError(db_url)


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    with Session(engine, expire_on_commit=False) as s:
        yield s
        s.rollback()


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


# --- the browser (tests/support/browser.py) ------------------------------------------------------


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """Keep each phase's report on the test, so that a page fixture knows at teardown whether it failed."""
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    setattr(item, f"report_{report.when}", report)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Debian's Chromium under Playwright (`.ci/run` installs it); the tests skip where it is missing.

    One per module, not per session: while Playwright's sync API runs, its event loop is the main
    thread's running loop, and a later test's `asyncio.run()` would refuse to start."""
    yield from chromium()
