"""Reads through the database's own driver, without SQLAlchemy: for a command that must answer at
once (`mianzi contests list` in under half a second, issue 14, when importing SQLAlchemy, SQLModel
and the table classes alone takes longer than that on this machine).

Only reads, only of a database already at the newest schema (`bot.context.plain_connection`
checks the revision first and otherwise migrates and reads through the engine), and only where
the driver opens the URL by itself: an SQLite file, PostgreSQL through psycopg. Anywhere else the
same functions read through the engine's own DB-API connection (`Engine.raw_connection`).
The rows are the ones the ORM reads, with the values it returns: aware UTC datetimes, JSON
documents and booleans (on SQLite stored as naive UTC text, JSON text and 0/1).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import fields
from datetime import datetime
from pathlib import Path
from typing import Any, Generic, Protocol, TypeVar

from models.rows import ContestRow
from models.values import as_utc

T = TypeVar("T")

_SQLITE = ("sqlite:///", "sqlite+pysqlite:///")
_PSYCOPG = "postgresql+psycopg://"


class Connection(Protocol):
    """A PEP 249 connection (the driver's own, or the one under an engine's pool)."""

    def cursor(self) -> Any: ...

    def close(self) -> Any: ...


def connect(url: str) -> Connection | None:
    """The driver's own connection to the database at `url` (a SQLAlchemy URL), or None when this
    module does not open such a URL by itself: another driver, a query string, an in-memory or
    missing SQLite file (the engine creates it), psycopg not installed or the server not reached
    (the engine then says why)."""
    if "?" in url or "#" in url:
        return None
    for prefix in _SQLITE:
        if url.startswith(prefix):
            path = url[len(prefix):]
            if not path or path == ":memory:" or "%" in path or not Path(path).is_file():
                return None
            import sqlite3

            return sqlite3.connect(path, timeout=30)
    if url.startswith(_PSYCOPG):
        try:
            import psycopg
        except ImportError:
            return None
        try:
            return psycopg.connect("postgresql://" + url[len(_PSYCOPG):])  # libpq reads the same URI
        except psycopg.Error:
            return None
    return None


def _rows(conn: Connection, sql: str) -> Sequence[Sequence[Any]]:
    cur = conn.cursor()
    try:
        cur.execute(sql)
        return list(cur.fetchall())
    finally:
        cur.close()


def revisions(*, conn: Connection) -> frozenset[str] | None:
    """The database's Alembic revisions (`alembic_version`), or None when it has none (a new database)."""
    try:
        return frozenset(row[0] for row in _rows(conn, "SELECT version_num FROM alembic_version"))
    except Exception:  # no such table: the driver's own error class, whichever driver
        rollback = getattr(conn, "rollback", None)
        if rollback is not None:
            rollback()  # PostgreSQL refuses the rest of a failed transaction
        return None


class ByRawRow(Generic[T]):
    """Values converted from raw rows, each row converted once: the raw row is its own version (any
    column that changes makes another key), so the same values give the same converted value without
    parsing its times and JSON again for every message. The values are shared: nobody may change
    them. On SQLite, whose JSON is text; PostgreSQL's driver returns JSON as dicts and lists, which
    cannot be keys, and its rows are converted each time. At `size` rows (a row edited again and
    again) it starts over."""

    def __init__(self, convert: Callable[[tuple[Any, ...]], T], size: int = 256) -> None:
        self._convert, self._size = convert, size
        self._known: dict[tuple[Any, ...], T] = {}

    def __call__(self, raw: tuple[Any, ...]) -> T:
        try:
            found = self._known.get(raw)
        except TypeError:  # unhashable: JSON as dicts and lists
            return self._convert(raw)
        if found is None:
            if len(self._known) >= self._size:
                self._known.clear()
            found = self._known[raw] = self._convert(raw)
        return found


def read_datetime(value: Any) -> datetime:
    """Aware UTC, as the ORM's column type returns it (SQLite keeps naive UTC text)."""
    return as_utc(datetime.fromisoformat(value) if isinstance(value, str) else value)


def read_json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def _converter(type_text: str) -> Callable[[Any], Any] | None:
    """How a column of a plain row is read, from its field's annotation."""
    if type_text.startswith("datetime"):
        return read_datetime
    if type_text.startswith(("dict", "list")):
        return read_json
    if type_text == "bool":
        return bool
    return None


_CONTEST_FIELDS = [(f.name, _converter(str(f.type))) for f in fields(ContestRow)]
_CONTESTS = f"SELECT {', '.join(name for name, _ in _CONTEST_FIELDS)} FROM contest ORDER BY start_at, id"


def contest_of(row: Iterable[Any]) -> ContestRow:
    """A contest's row as the driver returns it (its columns in `ContestRow`'s order) as a `ContestRow`."""
    return ContestRow(*(value if read is None or value is None else read(value)
                        for (_name, read), value in zip(_CONTEST_FIELDS, row, strict=True)))


def contest_rows(*, conn: Connection) -> list[ContestRow]:
    """Every contest, by start then id, cancelled ones too (`mianzi contests list`)."""
    return [contest_of(row) for row in _rows(conn, _CONTESTS)]
