"""Settings whose default is decided at start-up: where chat answers run (`MIANZI_CORE_PROCESS`)."""

from __future__ import annotations

import multiprocessing
import os

import pytest

from bot.settings import Settings
from bot.web.app import create_app
from tests.support.live_app import live_app


@pytest.mark.parametrize(("url", "cores", "on"), [
    ("sqlite:///mianzi.db", {0, 1}, True),  # the default install on a usual host: its own process
    ("sqlite:///mianzi.db", {0}, False),  # one core: a second process would only add a hand-over
    ("postgresql+psycopg://u@h/db", {0, 1}, False),  # PostgreSQL scales with more serve processes
])
def test_the_core_process_is_automatic(monkeypatch: pytest.MonkeyPatch, url: str, cores: set[int], on: bool) -> None:
    monkeypatch.delenv("MIANZI_CORE_PROCESS", raising=False)
    monkeypatch.setattr(os, "sched_getaffinity", lambda _pid: cores)
    assert Settings(database_url=url, _env_file=None).core_process_on() is on


@pytest.mark.parametrize("value", ["0", "1"])
def test_the_setting_overrides_the_automatic_choice(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("MIANZI_CORE_PROCESS", value)
    monkeypatch.setattr(os, "sched_getaffinity", lambda _pid: {0, 1})
    assert Settings(database_url="sqlite:///mianzi.db", _env_file=None).core_process_on() is (value == "1")


def test_a_default_server_on_sqlite_starts_its_core_process(db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    if not db_url.startswith("sqlite") or len(os.sched_getaffinity(0)) < 2:
        pytest.skip("the automatic choice is SQLite on more than one core")
    monkeypatch.delenv("MIANZI_CORE_PROCESS", raising=False)
    before = set(multiprocessing.active_children())
    with live_app(create_app(Settings(database_url=db_url, _env_file=None), background=False)):
        assert len([p for p in multiprocessing.active_children() if p not in before]) == 1
    assert [p for p in multiprocessing.active_children() if p not in before] == []
