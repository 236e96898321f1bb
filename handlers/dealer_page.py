"""What a dealer's own page shows (bot/dealer/, issue 17), as data: the same functions as the chat's
`/rank`, `团队`, `/me` and `/rewards`, plus the what-if of `models.prospects`.

Only the public top N, the dealer's own line (and for a captain, their own team's members) leave
here — the page shows no more of the ranking than the chat does.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlmodel import Session

from handlers import views
from handlers.announcements import certificate_path
from handlers.rewards import catalog
from models import contests as contest_ops
from models import partners, points, prospects, teams
from models.kinds import Role, Scope
from models.rows import AnyContest
from models.tables import Contest, Partner, Team

RECENT_POINTS = 8


def running(session: Session, partner: Partner, now: datetime) -> list[AnyContest]:
    """The running (active or settling) contests the partner takes part in, their standings fresh."""
    return [views.fresh(session, c) for c in views.open_contests(session, now)
            if contest_ops.status(c, now) != "upcoming" and views.takes_part(session, c, partner)]


def contest_part(session: Session, contest: AnyContest, partner: Partner, now: datetime) -> dict[str, Any]:
    """One running contest: the public board (the dealer's line or team marked), the dealer's own
    standing with its gaps, and the what-if."""
    view = views.rank_view(session, contest, partner, now)
    me, team = view["me"], view["team"]
    mine = team if contest.scope == Scope.TEAM else me
    board = [{**line, "mine": mine is not None and line["position"] == mine["position"]} for line in view["top"]]
    own_below = mine is not None and not any(line["mine"] for line in board)
    outlook = prospects.outlook(session, contest=contest, partner_id=partner.id, team_id=partner.team_id)
    return {"contest": view["contest"], "board": board, "ranked": view["ranked"], "me": me, "team": team,
            "own_below": own_below, "outlook": asdict(outlook) if outlook is not None else None}


def team_part(session: Session, partner: Partner, now: datetime) -> dict[str, Any] | None:
    """The dealer's team as the chat's `团队` shows it (a captain sees each member's contribution)."""
    if partner.team_id is None:
        return None
    team: Team | None = teams.team_by_id(session, team_id=partner.team_id)
    if team is None:
        return None
    contest, _ = views.pick_contest(session, partner, None, now, scope="team")
    if contest is None:
        contest, _ = views.pick_contest(session, partner, None, now)
    return views.team_view(session, contest, team, partner, now)


def honours(session: Session, partner: Partner, media_dir: Path) -> list[dict[str, Any]]:
    """Top-3 places of closed contests, with the certificate the scheduler drew when there is one."""
    found = contest_ops.honours_of(session, partner_id=partner.id, team_id=partner.team_id)
    return [{"contest_id": c.id, "contest": c.name, "rank": r.rank, "team": r.kind == "team", "start": c.start_at,
             "tz": c.timezone, "certificate": certificate_path(media_dir, c.id, partner.id).is_file()}
            for c, r in found]


def page(session: Session, *, partner_id: int, now: datetime, media_dir: Path) -> dict[str, Any] | None:
    """Everything the first view shows; None when the partner is gone."""
    partner = partners.partner_by_id(session, partner_id=partner_id)
    if partner is None:
        return None
    team = teams.team_by_id(session, team_id=partner.team_id) if partner.team_id else None
    balance = points.balance(session, partner.id)
    return {"partner": {"name": partner.name, "code": partner.code, "role": partner.role,
                        "captain": partner.role == Role.CAPTAIN, "team": team.name if team else None},
            "contests": [contest_part(session, c, partner, now) for c in running(session, partner, now)],
            "team": team_part(session, partner, now),
            "balance": int(balance),
            "recent": [{"amount": e.amount, "reason": e.reason, "at": e.created_at}
                       for e in points.entries(session, partner.id, limit=RECENT_POINTS)],
            "honours": honours(session, partner, media_dir),
            "store": catalog(session, balance=int(balance), locale=partner.locale)}


def standing_marks(session: Session, *, partner_id: int, now: datetime) -> dict[str, Any]:
    """The dealer's own rank, score and tier in each running contest (what the live page watches)."""
    partner = partners.partner_by_id(session, partner_id=partner_id)
    if partner is None:
        return {}
    marks: dict[str, Any] = {}
    for contest in running(session, partner, now):
        view = views.rank_view(session, contest, partner, now)
        line = view["team"] if contest.scope == Scope.TEAM else view["me"]
        own = view["me"]
        marks[str(contest.id)] = {"rank": line["rank"] if line else None, "score": own["score"] if own else None,
                                  "tier": line["tier"] if line else None}
    return marks


def standings_version(session: Session) -> str:
    """Changes whenever any open contest's standings are rebuilt (or marked stale): one small query."""
    rows = contest_ops.open_contest_rows(session)
    return ";".join(f"{c.id}:{c.standings_at.isoformat() if c.standings_at else '-'}:{int(c.standings_dirty)}"
                    for c in rows)


def calculate(session: Session, *, partner_id: int, contest_id: int, added: int, now: datetime
              ) -> dict[str, Any] | None:
    """The calculator: where `added` (fen, or a whole count) sold now puts the dealer today."""
    partner = partners.partner_by_id(session, partner_id=partner_id)
    contest: Contest | None = contest_ops.contest_by_id(session, contest_id=contest_id)
    if partner is None or contest is None or contest.cancelled_at is not None or contest.closed_at is not None:
        return None
    if not views.takes_part(session, contest, partner):
        return None
    found = prospects.what_if(session, contest=views.fresh(session, contest), partner_id=partner.id,
                              team_id=partner.team_id, added=added)
    return asdict(found) if found is not None else None
