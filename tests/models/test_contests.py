"""Closing contests: frozen results, points once, recurrence, late sales, concurrent closers."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Engine, func, select
from sqlmodel import Session

from models import contests
from models.db import session_scope
from models.tables import Contest, ContestResult, Partner, PointsEntry
from tests.support import builders as b
from tests.support.cli_runner import mianzi

AFTER = datetime(2026, 12, 1, 0, 0, tzinfo=UTC)  # 08:00 on 1 December in Shanghai
IMPORTED = datetime(2026, 11, 20, tzinfo=UTC)  # before the close, whatever today's date is


def setup_program(engine: Engine, **contest_kw) -> int:  # type: ignore[no-untyped-def]
    with session_scope(engine) as session:
        b.partners(session, *({"code": c, "team": "T" + str(i % 2)} for i, c in enumerate("ABCD")))
        b.sales(session, {"id": "a", "partner": "A", "occurred_at": "2026-11-05T10:00", "amount": "300"},
                {"id": "b", "partner": "B", "occurred_at": "2026-11-05T10:00", "amount": "200"},
                {"id": "c", "partner": "C", "occurred_at": "2026-11-04T10:00", "amount": "100"},
                now=IMPORTED)
        contest = b.contest(session, prizes="1=500,2=300", tiers="gold=250:50", **contest_kw)
        return contest.id  # type: ignore[return-value]


def points(session: Session) -> dict[str, int]:
    rows = session.execute(select(Partner.code, func.sum(PointsEntry.amount))
                           .join(Partner, Partner.id == PointsEntry.partner_id).group_by(Partner.code))
    return dict(rows.all())


def test_close_freezes_and_awards_once(engine: Engine, session: Session) -> None:
    cid = setup_program(engine)
    with session_scope(engine) as s:
        assert contests.due(s, datetime(2026, 11, 30, 15, 59, tzinfo=UTC)) == []
        assert contests.due(s, datetime(2026, 11, 30, 16, 0, tzinfo=UTC)) == [cid]
        closed = contests.close(s, cid, AFTER)
        assert closed is not None and closed.results == 4 and closed.points_entries == 2
    with session_scope(engine) as s:
        assert contests.close(s, cid, AFTER) is None
        assert contests.due(s, AFTER) == []
    assert points(session) == {"A": 550, "B": 300}
    frozen = session.execute(select(ContestResult).where(ContestResult.contest_id == cid)
                             .order_by(ContestResult.position)).scalars().all()
    assert [(r.rank, r.prize_points, r.tier) for r in frozen[:3]] == [(1, 550, "gold"), (2, 300, None), (3, 0, None)]
    assert frozen[0].reason["code"] == "ranked" and frozen[0].reason["rank_points"] == 500


def test_late_sales_do_not_change_frozen_results(engine: Engine, db_url: str) -> None:
    cid = setup_program(engine)
    with session_scope(engine) as s:
        contests.close(s, cid, AFTER)
    with session_scope(engine) as s:
        b.sales(s, {"id": "late", "partner": "D", "occurred_at": "2026-11-29T10:00", "amount": "9999"},
                now=datetime(2026, 12, 2, tzinfo=UTC))
    shown = mianzi("contests", "show", str(cid), "--json").json()
    assert shown["status"] == "closed" and shown["late_sales"] == 1
    assert shown["standings"][0]["partner"] == "A"
    d = next(x for x in shown["standings"] if x["partner"] == "D")
    assert d["score"] == "0.00"


def test_grace_period_delays_close(engine: Engine) -> None:
    cid = setup_program(engine, grace_seconds=6 * 3600)
    # period ends 2026-12-01 00:00 Shanghai = 2026-11-30 16:00 UTC; grace ends 22:00 UTC
    with session_scope(engine) as s:
        assert contests.due(s, datetime(2026, 11, 30, 21, 59, tzinfo=UTC)) == []
        assert contests.due(s, datetime(2026, 11, 30, 22, 0, tzinfo=UTC)) == [cid]


def test_concurrent_closers_award_once(engine: Engine, session: Session) -> None:
    cid = setup_program(engine)
    outcomes: list[object] = []
    barrier = threading.Barrier(4)

    def closer() -> None:
        barrier.wait()
        try:
            with session_scope(engine) as s:
                outcomes.append(contests.close(s, cid, AFTER))
        except Exception as exc:  # a loser may also see a lock error on SQLite: it must not award
            outcomes.append(exc)

    threads = [threading.Thread(target=closer) for _ in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert sum(1 for o in outcomes if isinstance(o, contests.Closed)) == 1, outcomes
    assert points(session) == {"A": 550, "B": 300}
    n = session.execute(select(func.count()).select_from(ContestResult)).scalar_one()
    assert n == 4


def test_recurrence_creates_the_next_period_once(engine: Engine) -> None:
    cid = setup_program(engine, recur="monthly")
    with session_scope(engine) as s:
        done = contests.close(s, cid, AFTER)
        assert done is not None and done.next_contest is not None
    with Session(engine) as s:
        nxt = s.execute(select(Contest).where(Contest.previous_id == cid)).scalar_one()
        assert (nxt.start_at.isoformat(), nxt.end_at.isoformat()) == ("2026-11-30T16:00:00+00:00",
                                                                       "2026-12-31T16:00:00+00:00")
        assert nxt.name == "12月销售冠军"  # the month in the name follows the period
        assert nxt.closed_at is None and nxt.recur == "monthly" and nxt.prizes == [{"rank": 1, "points": 500},
                                                                                   {"rank": 2, "points": 300}]


def test_weekly_and_quarterly_periods() -> None:
    from models.rules import next_period
    from models.values import zone

    sh = zone("Asia/Shanghai")
    start, end = datetime(2026, 11, 22, 16, tzinfo=UTC), datetime(2026, 11, 29, 16, tzinfo=UTC)
    week = next_period(start, end, "weekly", sh)
    assert (week.start, week.end) == (datetime(2026, 11, 29, 16, tzinfo=UTC), datetime(2026, 12, 6, 16, tzinfo=UTC))
    q = next_period(datetime(2026, 9, 30, 16, tzinfo=UTC), datetime(2026, 12, 31, 16, tzinfo=UTC), "quarterly", sh)
    assert (q.start, q.end) == (datetime(2026, 12, 31, 16, tzinfo=UTC), datetime(2027, 3, 31, 16, tzinfo=UTC))


def test_team_contest_awards_every_counted_member(engine: Engine, session: Session) -> None:
    with session_scope(engine) as s:
        b.partners(s, {"code": "A", "team": "T1"}, {"code": "B", "team": "T1", "joined_on": "2026-11-20"},
                   {"code": "C", "team": "T2"})
        b.sales(s, {"id": "a", "partner": "A", "occurred_at": "2026-11-05T10:00", "amount": "300"},
                {"id": "c", "partner": "C", "occurred_at": "2026-11-05T10:00", "amount": "100"})
        cid = b.contest(s, scope="team", prizes="1=200", min_tenure_days=30).id
    with session_scope(engine) as s:
        contests.close(s, cid, AFTER)
    assert points(session) == {"A": 200}  # B joined too late to count; T2 came second


def test_close_due_cli(engine: Engine, db_url: str, workdir: Path) -> None:
    cid = setup_program(engine, recur="weekly", name="周冠军")
    early = mianzi("contests", "close-due", "--now", "2026-11-30T23:00:00")
    assert early.code == 0 and "没有需要结算的比赛" in early.out
    ran = mianzi("contests", "close-due", "--now", "2026-12-01T08:00:00")
    assert ran.code == 0 and f"已结算比赛 #{cid}" in ran.out and "下一期" in ran.out
    again = mianzi("contests", "close-due", "--now", "2026-12-01T08:00:00")
    assert "没有需要结算的比赛" in again.out
