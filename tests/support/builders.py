"""Small program builders for tests, going through the real import functions; and the scheduler tests' program."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, select
from sqlmodel import Session

from models import contests
from models.db import session_scope
from models.imports.partners import PARTNER_COLUMNS, import_partners
from models.imports.records import rows_from_records
from models.imports.sale_rows import SALE_COLUMNS
from models.imports.sales import import_sales
from models.imports.targets import TARGET_COLUMNS, import_targets
from models.rules import parse_prizes, parse_score, parse_segment, parse_tiers
from models.tables import ChatIdentity, Contest, Partner, TeamChat
from models.values import parse_period_bound

SH = ZoneInfo("Asia/Shanghai")
END = datetime(2026, 12, 1, 0, 0, tzinfo=SH)  # the November period ends at midnight Shanghai time
MID = datetime(2026, 11, 20, 10, 0, tzinfo=SH)


def partners(session: Session, *rows: dict[str, Any]) -> None:
    """Partners with sensible defaults: joined long ago, tier 1, dealer."""
    full = [{"name": r["code"], "joined_on": "2020-01-01", "city_tier": "1", **r} for r in rows]
    import_partners(session, rows_from_records(full, PARTNER_COLUMNS))
    session.flush()


def telegram_recipients(engine: Engine, count: int, *, prefix: str = "P", chat_base: int = 90000) -> None:
    """`count` partners (codes `{prefix}0000`…), each bound to a Telegram private chat `chat_base + id`:
    the audience of a broadcast in the delivery tests."""
    from models.values import utcnow

    now = utcnow()
    with session_scope(engine) as s:
        partners(s, *({"code": f"{prefix}{i:04d}"} for i in range(count)))
        for p in s.execute(select(Partner).where(Partner.code.like(f"{prefix}%"))).scalars():
            s.add(ChatIdentity(partner_id=p.id, platform="telegram", user_ref=str(chat_base + p.id),
                               chat_ref=str(chat_base + p.id), bound_at=now, last_seen_at=now))


def sales(session: Session, *rows: dict[str, Any], now: datetime | None = None) -> None:
    full = [{"units": 1, **r} for r in rows]
    import_sales(session, rows_from_records(full, SALE_COLUMNS), SH, now=now)
    session.flush()


def targets(session: Session, *rows: dict[str, Any]) -> None:
    import_targets(session, rows_from_records(list(rows), TARGET_COLUMNS))
    session.flush()


def contest(session: Session, metric: str = "revenue", start: str = "2026-11-01", end: str = "2026-11-30",
            prizes: str | None = None, tiers: str | None = None, segment: str | None = None,
            min_score: str | None = None, min_satisfaction: str | None = None, **kw: Any) -> Contest:
    spec = contests.ContestSpec(
        name=kw.pop("name", "11月销售冠军"), metric=metric,
        start_at=parse_period_bound(start, SH, is_end=False), end_at=parse_period_bound(end, SH, is_end=True),
        prizes=parse_prizes(prizes), tiers=parse_tiers(tiers, metric), segment=parse_segment(segment),
        min_score=parse_score(min_score, metric) if min_score else None,
        min_satisfaction=parse_score(min_satisfaction, "satisfaction") if min_satisfaction else None, **kw)
    return contests.create(session, spec)


def program(engine: Engine, n: int = 14, **contest_kw) -> int:  # type: ignore[no-untyped-def]
    """The scheduler tests' program: n partners with falling revenue (P00 best), P03 and P04 tied, all bound on
    Telegram, team T0's group linked; a November contest (top 5, three prizes, a gold tier). Returns its id."""
    with session_scope(engine) as s:
        partners(s, *({"code": f"P{i:02d}", "name": f"伙伴{i:02d}", "team": f"T{i % 2}",
                       "locale": "en" if i == 5 else "zh"} for i in range(n)))
        amounts = {i: 100000 - i * 5000 for i in range(n)}
        amounts[4] = amounts[3]
        sales(s, *({"id": f"s{i}", "partner": f"P{i:02d}", "occurred_at": "2026-11-10T10:00",
                    "amount": str(a)} for i, a in amounts.items()))
        for p in s.execute(select(Partner)).scalars():
            s.add(ChatIdentity(partner_id=p.id, platform="telegram", user_ref=str(5000 + p.id),
                               chat_ref=str(5000 + p.id), bound_at=MID, last_seen_at=MID))
        team = s.execute(select(Partner.team_id).where(Partner.code == "P00")).scalar_one()
        s.add(TeamChat(team_id=team, platform="telegram", chat_ref="-100777", linked_at=MID))
        kw = {"prizes": "1=500,2=300,3=100", "tiers": "金牌=80000:200", "top_n": 5, **contest_kw}
        return contest(s, **kw).id  # type: ignore[return-value]
