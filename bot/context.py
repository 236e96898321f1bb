"""What every entry point shares: settings, the engine, and a migrated schema."""

from __future__ import annotations

import threading

from sqlalchemy import Engine

from bot.migrate import upgrade
from bot.settings import Settings, get_settings
from models.db import make_engine

_engines: dict[str, Engine] = {}
_lock = threading.Lock()


def engine_for(url: str) -> Engine:
    """One engine per URL in this process, migrated to the newest schema on first use."""
    with _lock:
        found = _engines.get(url)
        if found is None:
            found = make_engine(url)
            upgrade(found)
            _engines[url] = found
        return found


def engine(settings: Settings | None = None) -> Engine:
    return engine_for((settings or get_settings()).database_url)


def dispose_all() -> None:
    """Close every pooled connection (tests switch databases; the process may be ending)."""
    with _lock:
        for found in _engines.values():
            found.dispose()
        _engines.clear()
