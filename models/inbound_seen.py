"""Queries about the claims of inbound deliveries (`InboundSeen`: platform + key, unique).

`bot.core.dedupe` decides when to claim and when to prune; `bot.web.health` writes one claim of
its own to learn whether the database takes writes. Each function runs on the caller's
connection, in the caller's transaction.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Dialect, Insert, bindparam, delete, insert
from sqlalchemy.dialects import postgresql, sqlite

from models.db import Prepared, bind_converter, table_of
from models.tables import InboundSeen

KEY_LENGTH = 128  # `InboundSeen.key`: a longer key is cut to it

_TABLE = table_of(InboundSeen)


def add(conn: Connection, *, platform: str, key: str, seen_at: datetime) -> None:
    """Insert the claim; `IntegrityError` when the key is taken already (a repeat)."""
    conn.execute(insert(_TABLE).values(platform=platform, key=key[:KEY_LENGTH], seen_at=seen_at))


def claim(conn: Connection, *, platform: str, key: str, seen_at: datetime) -> bool:
    """Insert the claim unless the key is taken already: True if it went in (ours to process).

    `ON CONFLICT DO NOTHING` rather than catching the unique violation, because on PostgreSQL a
    failed statement spoils the whole transaction it ran in.
    """
    row = conn.execute(_claim_statement(conn.dialect.name),
                       {"platform": platform, "key": key[:KEY_LENGTH], "seen_at": seen_at}).first()
    return row is not None


def claim_all(conn: Connection, *, platform: str, keys: list[str], seen_at: datetime) -> set[str]:
    """`claim` of several keys in one statement: the keys (cut to `KEY_LENGTH`) that went in.

    One statement instead of one per key: a WeChat message claims its MsgId and its signed nonce,
    and on the chat core's path each statement costs several times its insert (measured). An
    INSERT of several VALUES rows has no SQLAlchemy cache key, so SQLAlchemy compiled it again for
    every message (a third of the core's time on a WeChat `排行`, py-spy): it is compiled once per
    dialect and row count (`Prepared`) and run on the driver's cursor, each value converted by its
    column's own bind processor, so it stores what SQLAlchemy stores.
    """
    convert = _converters(conn.dialect)
    at = convert["seen_at"](seen_at)
    params: dict[str, object] = {}
    for i, key in enumerate(keys):
        params.update({f"p{i}": convert["platform"](platform), f"k{i}": convert["key"](key[:KEY_LENGTH]),
                       f"s{i}": at})
    return {row[0] for row in _claim_all_statement(conn.dialect.name, len(keys)).rows_on(conn, params)}


def prune(conn: Connection, *, before: datetime) -> None:
    """Forget the claims older than `before`."""
    conn.execute(delete(_TABLE).where(_TABLE.c.seen_at < before))


def touch(conn: Connection, *, platform: str, key: str, seen_at: datetime) -> None:
    """Insert the claim, or move an existing one's time to `seen_at` (a write that always writes)."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    stmt = dialect.insert(_TABLE).values(platform=platform, key=key[:KEY_LENGTH], seen_at=seen_at)
    conn.execute(stmt.on_conflict_do_update(index_elements=["platform", "key"],
                                            set_={"seen_at": stmt.excluded.seen_at}))


_CLAIMS: dict[str, Insert] = {}
_CLAIMS_ALL: dict[tuple[str, int], Prepared] = {}
_CONVERTERS: dict[str, dict[str, Callable[[Any], Any]]] = {}


def _claim_statement(dialect: str) -> Insert:
    """The insert that skips a key already there, built once per dialect."""
    found = _CLAIMS.get(dialect)
    if found is None:
        module = postgresql if dialect == "postgresql" else sqlite
        # RETURNING tells whether a row went in on both databases; rowcount does not on PostgreSQL
        # (its implicit RETURNING of the id).
        found = (module.insert(_TABLE).on_conflict_do_nothing(index_elements=["platform", "key"])
                 .returning(_TABLE.c.id))
        _CLAIMS[dialect] = found
    return found


def _claim_all_statement(dialect: str, count: int) -> Prepared:
    """The insert of `count` claims that skips keys already there and returns those that went in."""
    found = _CLAIMS_ALL.get((dialect, count))
    if found is None:
        module = postgresql if dialect == "postgresql" else sqlite
        rows: list[dict[str, Any]] = [
            {"platform": bindparam(f"p{i}"), "key": bindparam(f"k{i}"), "seen_at": bindparam(f"s{i}")}
                for i in range(count)]
        found = Prepared(module.insert(_TABLE).values(rows)
                         .on_conflict_do_nothing(index_elements=["platform", "key"]).returning(_TABLE.c.key))
        _CLAIMS_ALL[(dialect, count)] = found
    return found


def _converters(dialect: Dialect) -> dict[str, Callable[[Any], Any]]:
    """The claim's columns' bind processors for `dialect`, looked up once."""
    found = _CONVERTERS.get(dialect.name)
    if found is None:
        found = _CONVERTERS[dialect.name] = {name: bind_converter(_TABLE.c[name], dialect)
                                             for name in ("platform", "key", "seen_at")}
    return found
