"""Queries over the results frozen when a contest closed (`ContestResult`)."""

from __future__ import annotations

from sqlalchemy import select
from sqlmodel import Session, col

from models.tables import Contest, ContestResult, Partner


def winning_member_names(session: Session, *, contest_id: int, team_id: int | None) -> list[str]:
    """The counted members of a team, best score first."""
    return list(session.execute(select(col(Partner.name)).join(ContestResult,
                                                               col(ContestResult.partner_id) == Partner.id)
                                .where(col(ContestResult.contest_id) == contest_id, col(ContestResult.kind) == "member",
                                       col(ContestResult.team_id) == team_id, col(ContestResult.eligible).is_(True))
                                .order_by(col(ContestResult.score).desc())).scalars())


def results_by_partner(session: Session, *, contest_id: int, kind: str) -> dict[int, ContestResult]:
    """Partner lines only: their partner_id is set."""
    return {r.partner_id: r for r in session.execute(select(ContestResult).where(
        col(ContestResult.contest_id) == contest_id, col(ContestResult.kind) == kind)).scalars()}


def results_by_team(session: Session, *, contest_id: int) -> dict[int | None, ContestResult]:
    return {r.team_id: r for r in session.execute(select(ContestResult).where(
        col(ContestResult.contest_id) == contest_id, col(ContestResult.kind) == "team")).scalars()}


def participant_ids(session: Session, *, contest_id: int) -> list[int]:
    """Every partner with a line of their own (individual or team member), sorted."""
    stmt = (select(col(ContestResult.partner_id)).where(col(ContestResult.contest_id) == contest_id,
                                                   col(ContestResult.kind).in_(("partner", "member")),
                                                   col(ContestResult.partner_id).is_not(None))
            .distinct())
    return sorted(int(pid) for pid in session.execute(stmt).scalars())


def of_partner(session: Session, *, partner_id: int, limit: int) -> list[tuple[Contest, ContestResult]]:
    """A partner's own frozen lines (individual contests, or their contribution to a team's), the
    latest contests first: what they scored, their rank, tier and prize."""
    joined = select(Contest, ContestResult).join(ContestResult, col(ContestResult.contest_id) == Contest.id)
    rows = session.execute(joined
                           .where(col(ContestResult.partner_id) == partner_id,
                                  col(ContestResult.kind).in_(("partner", "member")))
                           .order_by(col(Contest.end_at).desc(), col(Contest.id).desc()).limit(limit)).all()
    return [(contest, result) for contest, result in rows]
