"""`mianzi contests close-due` and the scheduler run one close-and-announce: whichever closes a
contest announces it, once; one run catches up every period that is due; a back-dated close
counts as late only the sales it did not see."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import Engine, func, select
from sqlmodel import Session

from models import contests
from models.db import session_scope
from models.tables import Contest, Outbox, PointsEntry
from scheduler import jobs
from tests.support import builders as b
from tests.support.builders import END, program
from tests.support.cli_runner import mianzi

CLOSE_AT = "2026-12-01T02:00:00"  # Shanghai: two hours after the November period ended
TICK_AT = END.astimezone(UTC) + timedelta(hours=3)


def announcements(engine: Engine) -> list[str]:
    """Keys of the queued announcements and private results (the surveys left out)."""
    with Session(engine) as s:
        return sorted(s.execute(select(Outbox.key).where(Outbox.kind.in_(("announcement", "result")))).scalars())


def results_of(keys: list[str], cid: int) -> int:
    """How many participants' private results of contest `cid` are queued (an image is extra)."""
    return sum(re.fullmatch(f"result:{cid}:partner:[0-9]+", k) is not None for k in keys)


def test_a_cli_close_is_announced_and_a_later_tick_adds_nothing(engine: Engine, db_url: str, workdir: Path) -> None:
    cid = program(engine)
    ran = mianzi("contests", "close-due", "--now", CLOSE_AT)
    assert ran.code == 0 and f"已结算比赛 #{cid}" in ran.out
    after_cli = announcements(engine)
    assert results_of(after_cli, cid) == 14
    assert f"announce:{cid}:chat:telegram:-100777" in after_cli
    with Session(engine) as s:
        queued = s.execute(select(func.count()).select_from(Outbox)).scalar_one()
    assert f"{queued} 条通知待发送" in ran.out
    assert jobs.tick(engine, TICK_AT)["closed"] == 0
    assert announcements(engine) == after_cli


def test_a_scheduled_close_leaves_nothing_for_the_cli(engine: Engine, db_url: str, workdir: Path) -> None:
    cid = program(engine)
    assert jobs.tick(engine, TICK_AT)["closed"] == 1
    after_tick = announcements(engine)
    assert results_of(after_tick, cid) == 14
    ran = mianzi("contests", "close-due", "--now", "2026-12-01T04:00:00")
    assert ran.code == 0 and "没有需要结算的比赛" in ran.out
    assert announcements(engine) == after_tick


def test_one_run_catches_up_every_missed_period(engine: Engine, db_url: str, workdir: Path) -> None:
    """A weekly contest from 2 November, closed for the first time on 1 December: four periods
    have ended. One run closes all four (each announced, its points awarded, once) and leaves the
    fifth, running, with its opening message; the old periods get none."""
    first = program(engine, recur="weekly", start="2026-11-02", end="2026-11-08", name="周冠军")
    with session_scope(engine) as s:  # a winner in every week
        b.sales(s, *({"id": f"w{day}", "partner": "P07", "occurred_at": f"2026-11-{day:02d}T10:00",
                      "amount": "500000"} for day in (3, 17, 24)))
    ran = mianzi("contests", "close-due", "--now", CLOSE_AT)
    assert ran.code == 0 and ran.out.count("已结算比赛") == 4, ran.out
    now = datetime.fromisoformat(CLOSE_AT).replace(tzinfo=END.tzinfo).astimezone(UTC)
    with Session(engine) as s:
        assert contests.due(s, now) == []
        chain = s.execute(select(Contest).order_by(Contest.start_at)).scalars().all()
        prizes = dict(s.execute(select(PointsEntry.source_key, func.count()).group_by(PointsEntry.source_key)).all())
    assert [c.id for c in chain][0] == first and len(chain) == 5
    closed, running = chain[:4], chain[4]
    assert all(c.closed_at is not None for c in closed) and running.closed_at is None
    assert running.start_at == datetime(2026, 11, 29, 16, tzinfo=UTC)
    keys = announcements(engine)
    for c in closed:
        assert results_of(keys, c.id) == 14
        assert f"announce:{c.id}:chat:telegram:-100777" in keys
        assert sum(k.startswith(f"contest:{c.id}:") for k in prizes) >= 1  # its prizes are in the ledger
        assert not any(k.startswith(f"opened:{c.id}:") for k in keys)
    assert sum(k.startswith(f"opened:{running.id}:") for k in keys) == 14
    assert set(prizes.values()) == {1}
    again = mianzi("contests", "close-due", "--now", CLOSE_AT)
    assert "没有需要结算的比赛" in again.out and announcements(engine) == keys


def test_a_back_dated_close_counts_only_the_sales_it_did_not_see(engine: Engine, db_url: str, workdir: Path) -> None:
    """Closed with `--now` on 1 December 2021, today: the sales were imported today, before the
    close ran, and are in its results; only one imported after the close is late."""
    with session_scope(engine) as s:
        b.partners(s, {"code": "A"}, {"code": "B"})
        b.sales(s, {"id": "a", "partner": "A", "occurred_at": "2021-11-05T10:00", "amount": "300"},
                {"id": "b", "partner": "B", "occurred_at": "2021-11-06T10:00", "amount": "200"})
        cid = b.contest(s, start="2021-11-01", end="2021-11-30", name="2021年11月销售冠军").id
    assert f"已结算比赛 #{cid}" in mianzi("contests", "close-due", "--now", "2021-12-01T08:00:00").out
    shown = mianzi("contests", "show", str(cid), "--json").json()
    assert shown["status"] == "closed" and shown["late_sales"] == 0
    with session_scope(engine) as s:
        b.sales(s, {"id": "late", "partner": "B", "occurred_at": "2021-11-29T10:00", "amount": "9999"},
                {"id": "next-month", "partner": "B", "occurred_at": "2021-12-02T10:00", "amount": "1"})
    shown = mianzi("contests", "show", str(cid), "--json").json()
    assert shown["late_sales"] == 1
    assert [(x["partner"], x["score"]) for x in shown["standings"]] == [("A", "300.00"), ("B", "200.00")]
