"""One partner's place in one statement (`standings.place_of_partner`, `place_in`) and the contest's
standings state (`standings_state`): the same answers as the line and next-place reads they replace,
through ties, zero scores, ineligible lines, team contests and frozen results."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from sqlmodel import Session, select

from models import contests, standings
from models.tables import Contest, Partner
from tests.support import builders as b


def _old_path(session: Session, contest: Contest, pid: int) -> tuple | None:  # type: ignore[type-arg]
    """What /rank read before: the own line, then `next_above`."""
    line = standings.line_of_partner(session, contest, pid)
    if line is None:
        return None
    above = standings.next_above(session, contest, line)
    return (line.kind, line.score, line.rank, line.position, line.eligible, line.reason, line.tier,
            line.prize_points, above.score if above is not None else None, above.rank if above is not None else None)


def _new_path(place: standings.Place | None) -> tuple | None:  # type: ignore[type-arg]
    if place is None:
        return None
    return (place.kind, place.score, place.rank, place.position, place.eligible, place.reason, place.tier,
            place.prize_points, place.above_score, place.above_rank)


def _tied_program(session: Session) -> dict[str, int]:
    """Partners with ties at the same moment (shared rank), at other moments (later ranks lower), a zero
    score, and an ineligible one (below the minimum score) whose score is above some ranked ones."""
    b.partners(session, *({"code": c, "team": f"T{i % 2}"} for i, c in enumerate("ABCDEFGHIJ")))
    b.sales(session,
            {"id": "1", "partner": "A", "occurred_at": "2026-11-05T10:00", "amount": "500"},
            {"id": "2", "partner": "B", "occurred_at": "2026-11-05T10:00", "amount": "300"},
            {"id": "3", "partner": "C", "occurred_at": "2026-11-05T10:00", "amount": "300"},  # B and C share
            {"id": "4", "partner": "D", "occurred_at": "2026-11-06T10:00", "amount": "300"},  # reached later
            {"id": "5", "partner": "E", "occurred_at": "2026-11-07T10:00", "amount": "200"},
            {"id": "6", "partner": "F", "occurred_at": "2026-11-07T10:00", "amount": "200"},
            {"id": "7", "partner": "G", "occurred_at": "2026-11-08T10:00", "amount": "50"},
            {"id": "8", "partner": "H", "occurred_at": "2026-11-08T10:00", "amount": "0.5"})  # I, J: nothing
    return {p.code: p.id for p in session.exec(select(Partner))}


def test_place_is_the_line_and_the_next_place_up(session: Session) -> None:
    ids = _tied_program(session)
    for kw in ({}, {"min_score": "1"}, {"scope": "team"}, {"tiers": "bronze=100:5,silver=400:10"}):
        contest = b.contest(session, prizes="1=50,2=20", top_n=3, **kw)
        standings.ensure_fresh(session, contest)
        session.refresh(contest)
        for code, pid in ids.items():
            old = _old_path(session, contest, pid)
            assert _new_path(standings.place_of_partner(session, contest, pid)) == old, (kw, code)
            state, place = standings.place_in(session, contest_id=contest.id, partner_id=pid)  # type: ignore[misc]
            assert _new_path(place) == old, (kw, code)
            assert state == standings.standings_state(session, contest_id=contest.id)
    individual = b.contest(session)
    standings.ensure_fresh(session, individual)
    place = {code: standings.place_of_partner(session, individual, pid) for code, pid in ids.items()}
    assert (place["A"].rank, place["A"].above_score) == (1, None)  # nobody ahead
    assert (place["B"].rank, place["C"].rank, place["D"].rank) == (2, 2, 4)  # shared, then reached later
    assert (place["B"].above_score, place["B"].above_rank) == (50000, 1)
    assert (place["E"].above_score, place["E"].above_rank) == (30000, 4)  # the last line holding 300: D
    assert (place["I"].score, place["I"].above_score) == (0, 50)  # zero scores are listed, H is ahead


def test_place_reads_frozen_results_and_rebuilds_stale_standings(session: Session) -> None:
    ids = _tied_program(session)
    contest = b.contest(session)
    assert standings.standings_state(session, contest_id=contest.id).stale  # type: ignore[union-attr]
    state, place = standings.place_in(session, contest_id=contest.id, partner_id=ids["E"])  # type: ignore[misc]
    assert not state.stale and state.standings_at is not None and (place.rank, place.score) == (5, 20000)
    b.sales(session, {"id": "9", "partner": "E", "occurred_at": "2026-11-09T10:00", "amount": "400"})
    assert standings.standings_state(session, contest_id=contest.id).stale  # type: ignore[union-attr]
    state2, place = standings.place_in(session, contest_id=contest.id, partner_id=ids["E"])  # type: ignore[misc]
    assert (place.rank, place.score, place.above_score) == (1, 60000, None)
    assert state2.standings_at != state.standings_at  # a rebuild is a new version
    contests.close(session, contest.id, datetime(2026, 12, 3, tzinfo=ZoneInfo("Asia/Shanghai")))
    session.expire_all()
    frozen = session.get(Contest, contest.id)
    state3, place = standings.place_in(session, contest_id=contest.id, partner_id=ids["A"])  # type: ignore[misc]
    assert state3.closed_at is not None
    assert _new_path(place) == _old_path(session, frozen, ids["A"])  # type: ignore[arg-type]
    assert (place.rank, place.above_score, place.above_rank) == (2, 60000, 1)
    assert standings.place_in(session, contest_id=contest.id + 100, partner_id=ids["A"]) is None
    assert standings.standings_state(session, contest_id=contest.id + 100) is None
    _state, nobody = standings.place_in(session, contest_id=contest.id, partner_id=max(ids.values()) + 1)  # type: ignore[misc]
    assert nobody is None
