"""The faster refresh and close give exactly what the previous code gave.

- `standings.activity` sums only what a contest's rules read: the standings equal those built
  from every sum and every time (the previous query, kept here as the reference), for every
  metric, scope and eligibility rule, with reversals, ratings, margins and targets;
- `models.db.insert_rows` stores what `session.execute(table.insert(), rows)` stores, and so does
  PostgreSQL's `models.db.copy_rows` (the sales import's COPY);
- the prize ledger written by INSERT … SELECT is the one the previous Python loop wrote.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import and_, case, func, select, text
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col

from models import contests, standings
from models.corrections import void
from models.db import ROWS_PER_INSERT, copy_rows, insert_rows, table_of
from models.standings import _Agg, _new_customers, _targets, _utc
from models.tables import Contest, ContestResult, Partner, PointsEntry, Sale, Standing
from tests.support import builders as b

AFTER = datetime(2026, 12, 1, 0, 0, tzinfo=UTC)


def reference_activity(session: Session, contest: Contest) -> dict[int, _Agg]:
    """The previous `standings.activity`: every sum and every metric's time, whatever the contest."""
    s = Sale
    when = col(s.occurred_at)
    satisfaction, margin = col(s.satisfaction), col(s.margin_fen)
    sign = case((col(s.reverses).is_(None), 1), else_=-1)
    stmt = (select(col(s.partner_id), func.sum(col(s.amount_fen)), func.sum(col(s.units)), func.sum(sign),
                   func.sum(func.coalesce(margin, 0)), func.sum(satisfaction * sign),
                   func.sum(case((satisfaction.is_not(None), sign), else_=0)),
                   func.max(case((col(s.amount_fen) > 0, when))), func.max(case((col(s.units) > 0, when))),
                   func.max(when), func.max(case((and_(margin.is_not(None), margin != 0), when))),
                   func.max(case((satisfaction.is_not(None), when))))
            .where(when >= contest.start_at, when < contest.end_at).group_by(col(s.partner_id)))
    aggs: dict[int, _Agg] = {}
    for pid, rev, units, orders, mar, rsum, rn, t_rev, t_units, t_any, t_margin, t_sat in session.execute(stmt):
        aggs[pid] = _Agg(revenue=int(rev or 0), units=int(units or 0), orders=int(orders), margin=int(mar or 0),
                         ratings_sum=int(rsum or 0), ratings_n=int(rn or 0),
                         reached={"revenue": _utc(t_rev), "attainment": _utc(t_rev), "units": _utc(t_units),
                                  "orders": _utc(t_any), "margin": _utc(t_margin), "satisfaction": _utc(t_sat)})
    if contest.metric == "new_customers":
        for pid, count, reached in _new_customers(session, contest):
            aggs.setdefault(pid, _Agg()).new_customers = count
            aggs[pid].reached["new_customers"] = reached
    if contest.metric == "attainment":
        for pid, target in _targets(session, contest).items():
            aggs.setdefault(pid, _Agg()).target = target
    return aggs


def ledger_data(session: Session) -> None:
    """Eight partners in three teams; sales with units, margins, customers, ratings, a reversal,
    one before the period, ties; targets for some."""
    b.partners(session, *({"code": f"P{i}", "team": f"T{i % 3}", "joined_on": "2026-10-20" if i == 7 else "2020-01-01"}
                          for i in range(8)))
    rows: list[dict[str, Any]] = []
    for i in range(8):
        for j in range(i % 4 + 1):
            rows.append({"id": f"s{i}-{j}", "partner": f"P{i}", "occurred_at": f"2026-11-{10 + j:02d}T1{i % 3}:00",
                         "amount": str(100 * (i % 5) + 10 * j), "units": (i + j) % 3,
                         "margin": str(5 * j) if i % 2 else "", "customer": f"K{(i + j) % 4}",
                         "satisfaction": (i + j) % 5 + 1 if i != 3 else ""})
    rows.append({"id": "old", "partner": "P1", "occurred_at": "2026-10-03T10:00", "amount": "50", "customer": "K1"})
    b.sales(session, *rows)
    void(session, "s2-0", reason="return", now=AFTER)
    b.targets(session, *({"partner": f"P{i}", "period_start": "2026-11-01", "period_end": "2026-11-30",
                          "target": "300"} for i in range(0, 8, 2)))


SHAPES = [{}, {"scope": "team", "team_score": "sum"}, {"scope": "team", "team_score": "avg"},
          {"min_satisfaction": "3"}, {"min_tenure_days": 30}, {"min_ratings": 1}]


@pytest.mark.parametrize("metric", ["revenue", "units", "orders", "new_customers", "margin", "attainment",
                                    "satisfaction"])
def test_standings_equal_those_from_every_sum(session: Session, metric: str, monkeypatch: pytest.MonkeyPatch) -> None:
    ledger_data(session)
    for shape in SHAPES:
        contest = b.contest(session, metric=metric, prizes="1=500,2=300", **shape)
        fast = standings.compute(session, contest)
        with monkeypatch.context() as m:
            m.setattr(standings, "activity", reference_activity)
            full = standings.compute(session, contest)
        assert fast == full, (metric, shape)
        assert any(e.score for e in fast), (metric, shape)  # the data moves every metric


def test_insert_rows_stores_what_sqlalchemy_stores(session: Session) -> None:
    ledger_data(session)
    one, two = b.contest(session), b.contest(session)
    lines = [e.as_row(0) for e in standings.compute(session, one)]
    assert any(line["reached_at"] is not None for line in lines) and any(line["reached_at"] is None for line in lines)
    lines *= 2 * ROWS_PER_INSERT // len(lines) + 2  # on SQLite: statements of many rows, then some of one
    assert len(lines) % ROWS_PER_INSERT
    session.execute(table_of(Standing).insert(), [{**line, "contest_id": one.id} for line in lines])
    insert_rows(session, table_of(Standing), [{**line, "contest_id": two.id} for line in lines])
    t = table_of(Standing)

    def stored(contest_id: int) -> list[tuple[Any, ...]]:
        columns = [c for c in t.c if c.name not in ("id", "contest_id")]
        return [tuple(r) for r in session.execute(select(*columns).where(t.c.contest_id == contest_id)
                                                  .order_by(t.c.id))]

    assert stored(one.id) == stored(two.id) and len(stored(one.id)) == len(lines)
    raw = text("SELECT CAST(reason AS TEXT), CAST(reached_at AS TEXT), eligible, score FROM standing"
               " WHERE contest_id = :contest ORDER BY id")  # the stored values themselves, byte for byte
    assert (session.execute(raw, {"contest": one.id}).all() == session.execute(raw, {"contest": two.id}).all())


def reference_ledger(session: Session, contest: Contest, now: datetime) -> list[dict[str, Any]]:
    """The previous `contests._prize_entries`: the ledger rows built in Python from the frozen results."""
    r = ContestResult
    lines = session.execute(select(col(r.kind), col(r.partner_id), col(r.team_id), col(r.rank), col(r.tier),
                                   col(r.prize_points), col(r.eligible))
                            .where(col(r.contest_id) == contest.id,
                                   ((col(r.kind) != "member") & (col(r.prize_points) > 0))
                                   | ((col(r.kind) == "member") & col(r.eligible).is_(True)))).all()
    team_prizes = {line.team_id: line for line in lines if line.kind == "team"}
    rows = []
    for line in lines:
        if line.kind == "partner":
            winner = line
        elif line.kind == "member" and line.team_id in team_prizes:
            winner = team_prizes[line.team_id]
        else:
            continue
        rows.append({"partner_id": line.partner_id, "kind": "earned", "amount": winner.prize_points,
                     "reason": {"code": "points.contest_prize", "contest_id": contest.id, "rank": winner.rank,
                                "tier": winner.tier, "team_id": line.team_id if line.kind == "member" else None},
                     "source_key": f"contest:{contest.id}:partner:{line.partner_id}", "created_at": now})
    return rows


@pytest.mark.parametrize("shape", [{}, {"scope": "team", "team_score": "sum"}, {"scope": "team", "team_score": "avg"},
                                   {"min_tenure_days": 30}])
def test_prize_ledger_is_the_previous_one(session: Session, shape: dict[str, Any]) -> None:
    ledger_data(session)
    contest = b.contest(session, prizes="1=500,2=300,3=100", tiers="gold=250:50,silver=100:20", **shape)
    closed = contests.close(session, contest.id, AFTER)
    assert closed is not None
    expected = reference_ledger(session, contest, AFTER)
    got = session.execute(select(PointsEntry).where(col(PointsEntry.source_key).like(f"contest:{contest.id}:%"))
                          ).scalars().all()

    def key(row: dict[str, Any]) -> tuple[Any, ...]:
        return (row["partner_id"], row["kind"], row["amount"], sorted(row["reason"].items(), key=str),
                list(row["reason"]), row["source_key"], _utc(row["created_at"]))

    stored = [{"partner_id": p.partner_id, "kind": p.kind, "amount": p.amount, "reason": p.reason,
               "source_key": p.source_key, "created_at": p.created_at} for p in got]
    assert closed.points_entries == len(expected) == len(stored) > 1
    assert sorted(map(key, stored), key=str) == sorted(map(key, expected), key=str)
    assert all(type(p.reason["rank"]) is int and type(p.reason["contest_id"]) is int for p in got)


def test_close_drops_only_its_own_standings(engine: Any, session: Session) -> None:
    """The cache is truncated only when it holds nothing but the closing contest's lines; another
    open contest's standings stay as they were (both paths of `contests._drop_standings`)."""
    from models.db import session_scope

    with session_scope(engine) as s:
        ledger_data(s)
        first, second = b.contest(s, prizes="1=500"), b.contest(s, metric="units", prizes="1=100")
        standings.refresh(s, first.id)
        standings.refresh(s, second.id)
        ids = first.id, second.id
    t = table_of(Standing)
    kept = session.execute(select(t).where(t.c.contest_id == ids[1]).order_by(t.c.id)).all()
    with session_scope(engine) as s:
        assert contests.close(s, ids[0], AFTER) is not None
    session.expire_all()
    assert session.execute(select(t).where(t.c.contest_id == ids[0])).all() == []
    assert session.execute(select(t).where(t.c.contest_id == ids[1]).order_by(t.c.id)).all() == kept
    with session_scope(engine) as s:
        assert contests.close(s, ids[1], AFTER) is not None
    assert session.execute(select(func.count()).select_from(t)).scalar_one() == 0
    frozen = session.execute(select(func.count()).select_from(ContestResult)).scalar_one()
    assert frozen == 2 * len(kept)


def test_copy_rows_stores_what_an_insert_stores(session: Session) -> None:
    """PostgreSQL's COPY of sales (`models.db.copy_rows`, the general import's new rows) stores the
    values an INSERT of the same rows stores; a taken key is SQLAlchemy's IntegrityError."""
    conn = session.connection()
    if conn.dialect.name != "postgresql":
        pytest.skip("COPY is PostgreSQL's")
    b.partners(session, {"code": "P1"}, {"code": "P2"})
    pids = [p.id for p in session.execute(select(Partner).order_by(col(Partner.id))).scalars()]
    t = table_of(Sale)
    at = datetime(2026, 11, 3, 4, 5, 6, 789, tzinfo=UTC)
    rows = [{"partner_id": pids[i % 2], "occurred_at": at + timedelta(hours=i), "amount_fen": 10**12 + i,
             "units": i, "margin_fen": None if i % 3 else -i, "customer": None if i % 4 else f"K'\\\t{i}",
             "satisfaction": None if i % 5 else i % 5 + 1, "imported_at": AFTER} for i in range(20)]
    conn.execute(t.insert(), [{**row, "ext_id": f"a{i}"} for i, row in enumerate(rows)])
    copy_rows(conn, t, [{**row, "ext_id": f"b{i}"} for i, row in enumerate(rows)])
    columns = [c for c in t.c if c.name not in ("id", "ext_id")]

    def stored(prefix: str) -> list[tuple[Any, ...]]:
        return [tuple(r) for r in conn.execute(select(*columns).where(t.c.ext_id.startswith(prefix)).order_by(t.c.id))]

    assert stored("a") == stored("b") and len(stored("b")) == len(rows)
    with pytest.raises(IntegrityError):
        copy_rows(conn, t, [{**rows[0], "ext_id": "a0"}])
