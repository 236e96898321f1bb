"""Queries over the results frozen when a contest closed (`ContestResult`)."""

from __future__ import annotations

from collections import Counter

from sqlalchemy import select
from sqlmodel import Session

from models.tables import ContestResult, Partner


def winning_member_names(session: Session, *, contest_id: int, team_id: int | None) -> list[str]:
    """The counted members of a team, best score first."""
    return list(session.execute(select(Partner.name).join(ContestResult, ContestResult.partner_id == Partner.id)
                                .where(ContestResult.contest_id == contest_id, ContestResult.kind == "member",
                                       ContestResult.team_id == team_id, ContestResult.eligible.is_(True))
                                .order_by(ContestResult.score.desc())).scalars())


def tier_counts(session: Session, *, contest_id: int, kind: str) -> Counter[str]:
    """How many lines of `kind` reached each tier."""
    return Counter(t for t in session.execute(select(ContestResult.tier).where(
        ContestResult.contest_id == contest_id, ContestResult.kind == kind,
        ContestResult.tier.is_not(None))).scalars())


def results_by_partner(session: Session, *, contest_id: int, kind: str) -> dict[int | None, ContestResult]:
    return {r.partner_id: r for r in session.execute(select(ContestResult).where(
        ContestResult.contest_id == contest_id, ContestResult.kind == kind)).scalars()}


def results_by_team(session: Session, *, contest_id: int) -> dict[int | None, ContestResult]:
    return {r.team_id: r for r in session.execute(select(ContestResult).where(
        ContestResult.contest_id == contest_id, ContestResult.kind == "team")).scalars()}


def participant_ids(session: Session, *, contest_id: int) -> list[int]:
    """Every partner with a line of their own (individual or team member), sorted."""
    stmt = (select(ContestResult.partner_id).where(ContestResult.contest_id == contest_id,
                                                   ContestResult.kind.in_(("partner", "member")),
                                                   ContestResult.partner_id.is_not(None))
            .distinct())
    return sorted(int(pid) for pid in session.execute(stmt).scalars())
