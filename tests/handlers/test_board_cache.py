"""The public board kept per process (`handlers.views.public_board`, `public_board_of`): the same
lines as built from the standings, and never served stale — a rebuild through another engine (as
another process would do it) or an import that left the standings stale is seen at the next read."""

from __future__ import annotations

from sqlalchemy import Engine
from sqlmodel import select

from handlers import views
from handlers.refresh import refresh_dirty
from models import contests, standings
from models.db import make_engine, session_scope
from models.tables import Contest
from tests.support import builders as b
from tests.support.console import ask, bound
from tests.support.console import program as console_program


def _uncached(engine: Engine, contest_id: int) -> tuple[list[dict], int]:  # type: ignore[type-arg]
    """The board as built from the standings, with nothing kept (`standings.top` and the names)."""
    with session_scope(engine) as s:
        contest = s.get(Contest, contest_id)
        assert contest is not None and not contest.standings_dirty
        top = standings.top(s, contest, min(contest.top_n, views.PUBLIC_TOP_MAX))
        names = views.names_of(s, list(top))
        return [views.line_view(x, names) for x in top], standings.ranked_count(s, contest=contest)


def _board(engine: Engine, contest_id: int) -> tuple[list[dict], int]:  # type: ignore[type-arg]
    with session_scope(engine) as s:
        found = views.public_board_of(s, contest_id=contest_id)
        assert found is not None
        return found


def test_board_of_matches_the_standings_and_follows_every_rebuild(engine: Engine, db_url: str) -> None:
    cid = b.program(engine)  # 14 partners, P03 and P04 tied, top 5
    board, ranked = _board(engine, cid)  # the standings were stale: rebuilt first
    assert (board, ranked) == _uncached(engine, cid)
    assert [x["name"] for x in board[:3]] == ["伙伴00", "伙伴01", "伙伴02"]
    assert {x["name"] for x in board[3:]} == {"伙伴03", "伙伴04"}  # tied: the same rank
    assert [x["rank"] for x in board] == [1, 2, 3, 4, 4] and ranked == 14
    assert _board(engine, cid) is _board(engine, cid)  # kept: one read of the version, nothing built
    with session_scope(engine) as s:  # /rank, from the contest row it reads anyway: the same kept board
        assert views.public_board(s, contests.contest_row(s, contest_id=cid)) is _board(engine, cid)

    other = make_engine(db_url)  # another pool and connections: what another process writes with
    try:
        with session_scope(other) as s:
            b.sales(s, {"id": "late", "partner": "P13", "occurred_at": "2026-11-12T10:00", "amount": "500000"})
            refresh_dirty(s)  # the rebuild `sales import` runs, in the other "process"
        board, ranked = _board(engine, cid)
        assert board[0]["name"] == "伙伴13" and (board, ranked) == _uncached(engine, cid)

        with session_scope(other) as s:  # an import that leaves the standings stale (no rebuild yet)
            b.sales(s, {"id": "later", "partner": "P12", "occurred_at": "2026-11-13T10:00", "amount": "900000"})
        with session_scope(engine) as s:
            assert standings.standings_state(s, contest_id=cid).stale  # type: ignore[union-attr]
        board, _ranked = _board(engine, cid)
        assert [x["name"] for x in board[:2]] == ["伙伴12", "伙伴13"] and (board, _ranked) == _uncached(engine, cid)

        with session_scope(other) as s:  # frozen: the results' board, under the new key
            contests.close(s, cid, b.END)
        board, ranked = _board(engine, cid)
        assert [x["name"] for x in board[:2]] == ["伙伴12", "伙伴13"] and ranked == 14
        with session_scope(engine) as s:
            state = standings.standings_state(s, contest_id=cid)
            assert state is not None and state.closed_at is not None
    finally:
        other.dispose()
    with session_scope(engine) as s:
        assert views.public_board_of(s, contest_id=cid + 1000) is None


def test_rank_in_chat_sees_a_rebuild_made_elsewhere(engine: Engine, db_url: str) -> None:
    """/rank reads the own line and the gap in one statement and the top from the kept board: a
    rebuild through another engine changes both at the next message."""
    ids = console_program(engine)
    me = bound(engine, "P4")
    reply = ask(engine, me, "排行")
    assert "🥇 经销商1" in reply and "您：第 4 名 / 共 6 名，¥20,000.00" in reply
    assert "距第 3 名还差 ¥10,000.00" in reply
    other = make_engine(db_url)
    try:
        with session_scope(other) as s:
            b.sales(s, {"id": "x", "partner": "P4", "occurred_at": "2026-11-12T10:00", "amount": "45000"})
            refresh_dirty(s)
            assert s.execute(select(Contest.standings_dirty).where(Contest.id == ids["solo"])).scalar_one() is False
    finally:
        other.dispose()
    reply = ask(engine, me, "排行")
    assert "🥇 经销商4" in reply and "您：第 1 名 / 共 6 名，¥65,000.00" in reply
    assert "距第" not in reply  # nobody ahead
