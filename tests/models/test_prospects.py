"""What if (models.prospects) against the standings themselves: the rank an amount gives is what
recomputing the standings with that sale gives, by the tie rule; each goal's amount is the least."""

from __future__ import annotations

import random
from datetime import timedelta

from sqlmodel import Session, select

from models import prospects, standings
from models.tables import Contest, Partner, Standing
from models.values import as_utc
from tests.support import builders as b
from tests.support.builders import SH


def program(session: Session, metric: str = "revenue", n: int = 30, seed: int = 3) -> Contest:
    rng = random.Random(seed)
    b.partners(session, *({"code": f"P{i:02d}", "team": f"T{i % 4}"} for i in range(n)))
    amounts = [rng.choice((1000, 2500, 2500, 4000, 7000, 12000)) for _ in range(n)]  # many ties
    b.sales(session, *({"id": f"s{i}", "partner": f"P{i:02d}", "occurred_at": f"2026-11-{1 + i % 20:02d}T10:00",
                        "amount": str(amounts[i]), "units": str(1 + i % 3)} for i in range(n) if i % 7 != 6))
    contest = b.contest(session, metric=metric, tiers="铜牌=3000:10,银牌=8000:20,金牌=20000:50"
                        if metric == "revenue" else "铜牌=2:10,银牌=3:20")
    standings.refresh(session, contest.id)
    return contest


def brute_rank(session: Session, contest: Contest, partner_id: int, score: int) -> int:
    """The rank by the tie rule with the line's score replaced, reached after everyone else."""
    lines = [x for x in session.exec(select(Standing).where(Standing.contest_id == contest.id,
                                                            Standing.kind == "partner")) if x.position is not None]
    return 1 + sum(1 for x in lines if x.partner_id != partner_id and x.score >= score)


def recomputed_rank(session: Session, contest: Contest, partner_id: int, added_fen: int) -> int | None:
    """The rank after really selling `added_fen` at the period's last moment (rolled back after)."""
    code = session.get(Partner, partner_id).code  # type: ignore[union-attr]
    nested = session.begin_nested()
    when = (as_utc(contest.end_at) - timedelta(minutes=1)).astimezone(SH).strftime("%Y-%m-%dT%H:%M")
    b.sales(session, {"id": "what-if", "partner": code, "occurred_at": when, "amount": f"{added_fen / 100:.2f}"})
    entries = standings.compute(session, contest)
    nested.rollback()
    return next(e.rank for e in entries if e.partner_id == partner_id and e.kind == "partner")


def test_rank_with_matches_counting_every_line(session: Session) -> None:
    contest = program(session)
    lines = list(session.exec(select(Standing).where(Standing.contest_id == contest.id, Standing.kind == "partner")))
    for line in lines:
        if line.position is None:
            continue
        for score in sorted({x.score for x in lines} | {0, 1, line.score + 1, 10**9}):
            if score < line.score:
                continue
            assert prospects.rank_with(session, contest=contest, kind="partner", score=score,
                                       own_position=line.position) == brute_rank(session, contest, line.partner_id,
                                                                                 score)


def test_every_goal_is_reached_by_its_amount_and_not_by_a_fen_less(session: Session) -> None:
    contest = program(session)
    for pid in session.exec(select(Partner.id)):
        out = prospects.outlook(session, contest=contest, partner_id=pid, team_id=None)
        assert out is not None
        for p in out.prospects:
            assert recomputed_rank(session, contest, pid, p.amount) == p.rank
            if p.kind in ("place", "top"):
                assert p.rank <= p.goal_rank  # type: ignore[operator]
                if p.amount > 0:
                    assert (recomputed_rank(session, contest, pid, p.amount - 1) or 10**6) > p.goal_rank  # type: ignore[operator]


def test_counts_need_whole_units(session: Session) -> None:
    contest = program(session, metric="units")
    for pid in session.exec(select(Partner.id)):
        out = prospects.outlook(session, contest=contest, partner_id=pid, team_id=None)
        assert out is not None and out.unit == prospects.COUNT
        for p in out.prospects:
            assert prospects.what_if(session, contest=contest, partner_id=pid, team_id=None,
                                     added=p.amount).score == p.score  # type: ignore[union-attr]
            assert p.score % 100 == 0


def test_no_what_if_for_satisfaction(session: Session) -> None:
    contest = program(session, metric="satisfaction")
    pid = session.exec(select(Partner.id)).first()
    assert prospects.outlook(session, contest=contest, partner_id=pid, team_id=None) is None  # type: ignore[arg-type]


def test_below_the_minimum_the_first_goal_is_to_qualify(session: Session) -> None:
    b.partners(session, {"code": "A"}, {"code": "B"}, {"code": "C"})
    b.sales(session, {"id": "a", "partner": "A", "occurred_at": "2026-11-02T10:00", "amount": "9000"},
            {"id": "b", "partner": "B", "occurred_at": "2026-11-02T11:00", "amount": "6000"},
            {"id": "c", "partner": "C", "occurred_at": "2026-11-02T12:00", "amount": "1500"})
    contest = b.contest(session, min_score="5000")
    standings.refresh(session, contest.id)
    c = session.exec(select(Partner.id).where(Partner.code == "C")).one()
    out = prospects.outlook(session, contest=contest, partner_id=c, team_id=None)
    assert out is not None
    first = out.prospects[0]
    assert (first.kind, first.amount, first.rank) == ("qualify", 350000, 3)
    assert recomputed_rank(session, contest, c, first.amount) == 3
    assert recomputed_rank(session, contest, c, first.amount - 1) is None
    assert prospects.what_if(session, contest=contest, partner_id=c, team_id=None, added=100).rank is None  # type: ignore[union-attr]
    assert prospects.what_if(session, contest=contest, partner_id=c, team_id=None, added=350000).rank == 3  # type: ignore[union-attr]


def test_no_what_if_when_selling_cannot_rank_you(session: Session) -> None:
    """Too new to take part (tenure): no sale changes that, in an individual or a team contest."""
    b.partners(session, {"code": "OLD", "team": "T"}, {"code": "NEW", "team": "T", "joined_on": "2026-10-20"})
    b.sales(session, {"id": "o", "partner": "OLD", "occurred_at": "2026-11-02T10:00", "amount": "9000"},
            {"id": "n", "partner": "NEW", "occurred_at": "2026-11-02T11:00", "amount": "6000"})
    solo = b.contest(session, min_tenure_days=90)
    team = b.contest(session, name="团队赛", scope="team", min_tenure_days=90)
    new = session.exec(select(Partner).where(Partner.code == "NEW")).one()
    for contest in (solo, team):
        standings.refresh(session, contest.id)
        assert prospects.outlook(session, contest=contest, partner_id=new.id, team_id=new.team_id) is None
        assert prospects.what_if(session, contest=contest, partner_id=new.id, team_id=new.team_id, added=100) is None
    old = session.exec(select(Partner).where(Partner.code == "OLD")).one()
    assert prospects.outlook(session, contest=team, partner_id=old.id, team_id=old.team_id) is not None
