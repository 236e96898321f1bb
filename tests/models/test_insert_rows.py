"""`models.db.insert_rows` stores what SQLAlchemy's INSERT stores, value for value (on PostgreSQL by COPY
from `COPY_FROM` rows)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, select
from sqlmodel import Session

from models.db import COPY_FROM, insert_rows, session_scope, table_of
from models.tables import Outbox

SHANGHAI = ZoneInfo("Asia/Shanghai")


def _rows(prefix: str, count: int = COPY_FROM + 1) -> list[dict[str, Any]]:
    awkward = "王强\t\\N\n第二行 \\ 反斜杠 \"引号\" 😀"  # COPY's text format escapes tabs, newlines, backslashes
    return [{"key": f"{prefix}:{n}", "kind": "reply", "partner_id": None, "identity_id": None,
             "platform": "telegram", "chat_ref": str(1_000 + n), "is_group": n % 2 == 0,
             "payload": {"text": awkward, "n": n, "nested": {"list": [1, None, "二"]}} if n else {},
             "status": "pending", "attempts": n, "next_attempt_at": datetime(2026, 12, 3, 8, n % 60, tzinfo=SHANGHAI),
             "lease_until": None, "leased_by": None if n else awkward, "last_error": None,
             "created_at": datetime(2026, 12, 3, 0, 0, n % 60, 123456, tzinfo=UTC), "sent_at": None}
            for n in range(count)]


def _stored(session: Session, prefix: str) -> list[dict[str, Any]]:
    table = table_of(Outbox)
    columns = [c for c in table.c if c.name not in ("id", "key")]
    return [dict(row._mapping) for row in session.execute(
        select(*columns).where(table.c.key.like(f"{prefix}:%")).order_by(table.c.attempts))]


def test_insert_rows_stores_what_an_insert_stores(engine: Engine) -> None:
    table = table_of(Outbox)
    with session_scope(engine) as session:
        session.execute(table.insert(), _rows("orm"))
        insert_rows(session, table, _rows("ours"))
    with session_scope(engine) as session:
        ours, orm = _stored(session, "ours"), _stored(session, "orm")
    assert len(ours) == COPY_FROM + 1 and ours == orm
    assert ours[1]["payload"]["text"].startswith("王强\t\\N\n") and ours[1]["payload"]["nested"]["list"] == [1, None, "二"]
    assert ours[0]["leased_by"].endswith("😀") and ours[0]["payload"] == {}
    assert ours[0]["created_at"].replace(tzinfo=None) == datetime(2026, 12, 3, 0, 0, 0, 123456)  # UTC, to the µs
    assert ours[2]["next_attempt_at"].replace(tzinfo=None) == datetime(2026, 12, 3, 0, 2)  # Shanghai 08:02 in UTC


def test_insert_rows_rolls_back_with_its_transaction(engine: Engine) -> None:
    table = table_of(Outbox)
    try:
        with session_scope(engine) as session:
            insert_rows(session, table, _rows("gone"))
            insert_rows(session, table, _rows("few", 3))
            raise RuntimeError("the import fails after its rows were written")
    except RuntimeError:
        pass
    with session_scope(engine) as session:
        assert _stored(session, "gone") == [] and _stored(session, "few") == []
