"""Small program builders for tests, going through the real import functions."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlmodel import Session

from models import contests
from models.imports import (
    PARTNER_COLUMNS,
    SALE_COLUMNS,
    TARGET_COLUMNS,
    import_partners,
    import_sales,
    import_targets,
    rows_from_records,
)
from models.rules import parse_prizes, parse_score, parse_segment, parse_tiers
from models.tables import Contest
from models.values import parse_period_bound

SH = ZoneInfo("Asia/Shanghai")


def partners(session: Session, *rows: dict[str, Any]) -> None:
    """Partners with sensible defaults: joined long ago, tier 1, dealer."""
    full = [{"name": r["code"], "joined_on": "2020-01-01", "city_tier": "1", **r} for r in rows]
    import_partners(session, rows_from_records(full, PARTNER_COLUMNS))
    session.flush()


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
