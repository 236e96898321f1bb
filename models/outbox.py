"""The outbox: every push queued idempotently (by its key) before a delivery worker sends it.

`personal` and `to_group` build the rows, `queue` inserts them; `models.leases` is how workers
take them, `models.recipients` who gets a personal push, `models.delivery_report` what became of them.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session

from models.db import table_of
from models.recipients import Recipient
from models.tables import Outbox
from models.values import utcnow


def personal(person: Recipient, *, key: str, kind: str, payload: dict[str, Any], batch_id: int | None = None,
             next_attempt_at: datetime | None = None) -> dict[str, Any]:
    """A row for `queue`: one push to a partner's chat account (`next_attempt_at`: not before; default now)."""
    row: dict[str, Any] = {"key": key, "kind": kind, "partner_id": person.partner_id, "identity_id": person.identity_id,
                           "platform": person.platform, "chat_ref": person.chat_ref, "payload": payload}
    if batch_id is not None:
        row["batch_id"] = batch_id
    if next_attempt_at is not None:
        row["next_attempt_at"] = next_attempt_at
    return row


def to_group(*, key: str, kind: str, platform: str, chat_ref: str, payload: dict[str, Any]) -> dict[str, Any]:
    """A row for `queue`: one post to a group chat (no partner, no identity)."""
    return {"key": key, "kind": kind, "platform": platform, "chat_ref": chat_ref, "is_group": True, "payload": payload}


def queue(conn: Connection | Session, rows: Sequence[dict[str, Any]], now: datetime | None = None) -> int:
    """Insert outbox rows, skipping any whose `key` is already queued. Returns how many were new.

    Each row needs key, kind, platform, chat_ref, payload; optional batch_id, partner_id,
    identity_id, is_group, next_attempt_at (default now).
    """
    if not rows:
        return 0
    now = now or utcnow()
    full = [{"batch_id": None, "partner_id": None, "identity_id": None, "is_group": False, "status": "pending",
             "attempts": 0, "next_attempt_at": now, "created_at": now, **r} for r in rows]
    dialect = conn.get_bind().dialect.name if isinstance(conn, Session) else conn.dialect.name
    table = table_of(Outbox)
    insert = (postgresql.insert(table) if dialect == "postgresql" else sqlite.insert(table))
    before = _count(conn)
    for start in range(0, len(full), 5000):
        conn.execute(insert.on_conflict_do_nothing(index_elements=["key"]), full[start:start + 5000])
    return _count(conn) - before


def _count(conn: Connection | Session) -> int:
    return int(conn.execute(select(func.count()).select_from(Outbox)).scalar_one())
