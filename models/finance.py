"""A closed contest's results for finance: every participant, their prize points and their rebate in yuan.

The rebate is the tier's rebate percentage of the partner's revenue in the period as frozen at the
close (`ContestResult.revenue_fen`: late sales and corrections after the close change nothing), in
integer fen arithmetic: revenue (fen) × the percentage as an exact fraction, rounded half up to the
fen, once per partner; the totals are the sums of those fen. A net revenue at or below zero earns
no rebate. In a team contest each counted member of a team receives the team's tier and prize
(as the points ledger does) and the rebate on their own revenue.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select
from sqlmodel import Session, col

from models import contests as contest_ops
from models.errors import DataError
from models.tables import Contest, ContestResult, Partner, Sale, Team


@dataclass(frozen=True)
class ResultLine:
    code: str
    name: str
    team: str | None  # the team's name
    eligible: bool
    score: int  # hundredths of the metric's unit
    rank: int | None
    tier: str | None
    prize_points: int
    revenue_fen: int
    rebate_pct: str | None
    rebate_fen: int
    reason: dict[str, Any]


@dataclass(frozen=True)
class Results:
    contest: Contest
    lines: list[ResultLine]
    prize_points: int
    revenue_fen: int
    rebate_fen: int


def rebate_fen(revenue_fen: int, pct: str | None) -> int:
    """`pct` percent of `revenue_fen`, rounded half up to the fen (exact: no float anywhere)."""
    if not pct or revenue_fen <= 0:
        return 0
    num, den = Decimal(pct).as_integer_ratio()
    if num <= 0:
        return 0
    scale = den * 100
    return (2 * revenue_fen * num + scale) // (2 * scale)


def _ledger_revenue(session: Session, contest: Contest) -> dict[int, int]:
    """Revenue per partner from the ledger (results frozen before revenue was kept with them)."""
    stmt = (select(col(Sale.partner_id), func.sum(col(Sale.amount_fen)))
            .where(col(Sale.occurred_at) >= contest.start_at, col(Sale.occurred_at) < contest.end_at)
            .group_by(col(Sale.partner_id)))
    return {pid: int(total or 0) for pid, total in session.execute(stmt)}


def results(session: Session, *, contest_id: int) -> Results:
    """Every participant of a closed contest, in rank order (the unranked after, by score)."""
    contest = session.get(Contest, contest_id)
    if contest is None:
        raise DataError("error.unknown_contest", value=contest_id)
    if contest.closed_at is None:
        raise DataError("error.results_not_closed", id=contest_id,
                        status=contest_ops.status(contest))
    own_kind = "member" if contest.scope == "team" else "partner"
    r = ContestResult
    rows = session.execute(select(r).where(col(r.contest_id) == contest_id,
                                           col(r.kind).in_((own_kind, "team")))).scalars().all()
    teams_lines = {row.team_id: row for row in rows if row.kind == "team"}
    people: dict[int, tuple[str, str]] = {pid: (code, name) for pid, code, name in session.execute(
        select(col(Partner.id), col(Partner.code), col(Partner.name)))}
    team_names: dict[int, str] = {tid: name for tid, name in session.execute(select(col(Team.id), col(Team.name)))}
    fallback: dict[int, int] | None = None
    lines: list[tuple[tuple[bool, int, int, int, str], ResultLine]] = []
    for row in rows:
        if row.kind != own_kind:
            continue
        award = row
        if own_kind == "member":
            team_line = teams_lines.get(row.team_id)
            award = team_line if team_line is not None and row.eligible else None
        revenue = row.revenue_fen
        if revenue is None:
            fallback = fallback if fallback is not None else _ledger_revenue(session, contest)
            revenue = fallback.get(row.partner_id, 0) if row.partner_id is not None else 0
        code, name = people.get(row.partner_id, ("", "")) if row.partner_id is not None else ("", "")
        pct = award.rebate_pct if award is not None else None
        line = ResultLine(code=code, name=name, team=team_names.get(row.team_id) if row.team_id else None,
                          eligible=row.eligible, score=row.score, rank=award.rank if award is not None else None,
                          tier=award.tier if award is not None else None,
                          prize_points=award.prize_points if award is not None else 0, revenue_fen=revenue,
                          rebate_pct=pct, rebate_fen=rebate_fen(revenue, pct), reason=row.reason)
        position = (award.position or 0) if award is not None else 0
        order = (line.rank is None, line.rank or 0, position, -row.score, code)
        lines.append((order, line))
    ordered = [line for _key, line in sorted(lines, key=lambda x: x[0])]
    return Results(contest, ordered, sum(x.prize_points for x in ordered), sum(x.revenue_fen for x in ordered),
                   sum(x.rebate_fen for x in ordered))


def fen_text(fen: int) -> str:
    """Fen as an exact decimal string of yuan (`123456` → `1234.56`)."""
    sign = "-" if fen < 0 else ""
    return f"{sign}{abs(fen) // 100}.{abs(fen) % 100:02d}"
