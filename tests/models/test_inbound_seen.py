"""The claims of inbound deliveries: `claim_all` (one statement on the driver's cursor) stores what
`claim` (through SQLAlchemy) stores, and says which keys were taken before."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, String, cast
from sqlmodel import Session, select

from models import inbound_seen
from models.db import table_of
from models.tables import InboundSeen


def test_claim_all_takes_each_key_once(engine: Engine) -> None:
    at = datetime(2026, 12, 3, 6, 0, 0, 123456, tzinfo=UTC)
    with engine.begin() as conn:
        assert inbound_seen.claim_all(conn, platform="wechat", keys=["msg:1", "nonce:a"], seen_at=at) == {
            "msg:1", "nonce:a"}
        assert inbound_seen.claim_all(conn, platform="wechat", keys=["msg:1", "nonce:b"], seen_at=at) == {"nonce:b"}
        assert inbound_seen.claim_all(conn, platform="wecom", keys=["msg:1"], seen_at=at) == {"msg:1"}
        long_key = "k" * 200
        assert inbound_seen.claim_all(conn, platform="wechat", keys=[long_key], seen_at=at) == {
            long_key[:inbound_seen.KEY_LENGTH]}
        assert not inbound_seen.claim(conn, platform="wechat", key="nonce:a", seen_at=at)


def test_claim_all_stores_what_claim_stores(engine: Engine) -> None:
    """Every row's time in the column's own form (SQLite text without an offset), so that `prune`
    compares like with like; the ORM reads them back as the same aware datetimes."""
    at = datetime(2026, 12, 3, 6, 0, 0, 123456, tzinfo=UTC)
    with engine.begin() as conn:
        inbound_seen.claim(conn, platform="wechat", key="one", seen_at=at)
        inbound_seen.claim_all(conn, platform="wechat", keys=["two", "three"], seen_at=at)
        table = table_of(InboundSeen)
        raw = conn.execute(select(cast(table.c.seen_at, String)).order_by(table.c.id)).scalars().all()
    assert len(set(raw)) == 1, raw
    with Session(engine) as session:
        rows = session.exec(select(InboundSeen).order_by(table.c.id)).all()
        assert [(r.key, r.seen_at) for r in rows] == [("one", at), ("two", at), ("three", at)]
    with engine.begin() as conn:
        inbound_seen.prune(conn, before=at + timedelta(microseconds=1))
    with Session(engine) as session:
        assert session.exec(select(InboundSeen)).all() == []
