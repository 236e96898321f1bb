"""Shared set-up for the points, rewards, trainings and feedback tests: a small program with a catalog, points
earned, and what the ledger, the store and the outbox hold (the chat users: `tests.support.console`)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, func, select
from sqlmodel import Session

from models import points, rewards
from models.db import session_scope
from models.imports.records import rows_from_records
from models.tables import Outbox, Partner, PointsEntry, RewardItem
from tests.support import builders as b
from tests.support.console import NOW


def program(engine: Engine) -> dict[str, int]:
    """Dealers P1–P3 (华东, P3 in 华南), an admin BOSS (English), and a catalog. Returns partner ids by code."""
    with session_scope(engine) as s:
        b.partners(s, {"code": "P1", "name": "经销商1", "region": "华东", "team": "EAST"},
                   {"code": "P2", "name": "经销商2", "region": "华东", "team": "EAST"},
                   {"code": "P3", "name": "经销商3", "region": "华南", "team": "WEST"},
                   {"code": "BOSS", "name": "孙经理", "role": "admin", "locale": "en"})
        catalog(s, {"sku": "MUG", "name_zh": "马克杯", "name_en": "Mug", "points": 100, "stock": 5},
                {"sku": "TV", "name_zh": "电视", "name_en": "TV", "points": 5000, "stock": 1},
                {"sku": "PEN", "name_zh": "钢笔", "name_en": "Pen", "points": 50, "stock": 0},
                {"sku": "OLD", "name_zh": "旧款", "name_en": "Old", "points": 10, "stock": 9, "active": "0"})
        return dict(s.execute(select(Partner.code, Partner.id)).all())  # type: ignore[arg-type]


def catalog(session: Session, *items: dict[str, Any], now: datetime = NOW) -> None:
    rewards.import_catalog(session, rows_from_records(list(items), rewards.CATALOG_COLUMNS), now)


def earn(engine: Engine, partner_id: int, amount: int, at: datetime = NOW - timedelta(days=1), key: str | None = None) -> None:
    """A contest prize, the usual way points arrive."""
    with session_scope(engine) as s:
        points.credit(s, partner_id, amount, "earned", {"code": "points.contest_prize"},
                      key or f"test:{partner_id}:{at.isoformat()}:{amount}", at)


def balance(engine: Engine, partner_id: int) -> int:
    with Session(engine) as s:
        return points.balance(s, partner_id)


def stock(engine: Engine, sku: str) -> int:
    with Session(engine) as s:
        return s.execute(select(RewardItem.stock).where(RewardItem.sku == sku)).scalar_one()


def entries(engine: Engine, partner_id: int) -> list[tuple[str, int]]:
    with Session(engine) as s:
        return [(e.kind, e.amount) for e in s.execute(select(PointsEntry).where(PointsEntry.partner_id == partner_id)
                                                      .order_by(PointsEntry.id)).scalars()]


def outbox(engine: Engine, prefix: str = "") -> dict[str, dict[str, Any]]:
    """Queued pushes by key (optionally only keys starting with `prefix`)."""
    with Session(engine) as s:
        rows = s.execute(select(Outbox.key, Outbox.payload).where(Outbox.key.startswith(prefix))
                         .order_by(Outbox.id)).all()
    return {k: p for k, p in rows}


def count(engine: Engine, table: type) -> int:
    with Session(engine) as s:
        return s.execute(select(func.count()).select_from(table)).scalar_one()
