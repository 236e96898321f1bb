"""What every entry point shares: settings, the engine, and a migrated schema.

Light at the top (no SQLAlchemy): `plain_connection` serves the commands that must answer at
once without importing the data layer; `engine` imports it when first asked.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from bot.settings import Settings, get_settings

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from models.plain import Connection

_engines: dict[str, Engine] = {}
_lock = threading.Lock()


def engine_for(url: str) -> Engine:
    """One engine per URL in this process, migrated to the newest schema on first use."""
    from bot.migrate import upgrade
    from models.db import make_engine

    with _lock:
        found = _engines.get(url)
        if found is None:
            found = make_engine(url)
            upgrade(found)
            _engines[url] = found
        return found


def engine(settings: Settings | None = None) -> Engine:
    return engine_for((settings or get_settings()).database_url)


@contextmanager
def plain_connection(settings: Settings | None = None) -> Iterator[Connection]:
    """A DB-API connection to the program's database for a read (`models.plain`): the driver's
    own when it opens the URL by itself and the schema is the newest (no SQLAlchemy imported);
    otherwise the engine's, after it has migrated the schema, exactly as `engine` does."""
    from bot.migrate import script_heads
    from models import plain

    url = (settings or get_settings()).database_url
    own = plain.connect(url)
    if own is not None:
        try:
            current = plain.revisions(conn=own)
            if current is not None and current == script_heads():
                yield own
                return
        finally:
            own.close()
    pooled = engine_for(url).raw_connection()
    try:
        yield pooled
    finally:
        pooled.close()


def dispose_all() -> None:
    """Close every pooled connection (tests switch databases; the process may be ending)."""
    with _lock:
        for found in _engines.values():
            found.dispose()
        _engines.clear()
