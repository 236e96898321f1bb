"""Queries about the claims of inbound deliveries (`InboundSeen`: platform + key, unique).

`bot.core.dedupe` decides when to claim and when to prune; `bot.web.health` writes one claim of
its own to learn whether the database takes writes. Each function runs on the caller's
connection, in the caller's transaction.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, Insert, delete, insert
from sqlalchemy.dialects import postgresql, sqlite

from models.db import table_of
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
