"""Bringing partners in, and what an admin sees of one: bulk invites and a partner's profile.

`issue` chooses the partners (`models.roster`) and gives each a fresh invite in the caller's
transaction (`models.identities.issue_invites`: their older unused codes are revoked). What goes
around it — WeChat QR codes, the sheet, the posters — is in `bot/onboarding.py`, which the
command line and the admin console call.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlmodel import Session

from handlers import views
from models import contests as contest_ops
from models import standings, teams
from models.errors import DataError
from models.identities import accounts_of, issue_invites
from models.points import balance
from models.roster import RosterRow, Selection, listing
from models.rows import AnyContest
from models.tables import Partner


def telegram_link(bot_username: str, code: str) -> str:
    """The deep link that opens the bot with `/start <code>`, which binds."""
    return f"https://t.me/{bot_username}?start={code}"


@dataclass
class InviteLine:
    """One partner's new invite, and (filled in by the caller) their WeChat QR code."""

    partner: str
    name: str
    team: str | None
    team_name: str | None
    role: str
    invite: str
    expires_at: datetime
    telegram_link: str
    wechat: dict[str, Any] = field(default_factory=dict)  # ticket, url, image_url, expire_seconds; or reason
    wechat_png: bytes | None = None

    def doc(self) -> dict[str, Any]:
        return {"partner": self.partner, "name": self.name, "team": self.team, "invite": self.invite,
                "expires_at": self.expires_at.isoformat(), "telegram_link": self.telegram_link,
                "wechat_qr": self.wechat or None}


@dataclass(frozen=True)
class Batch:
    lines: list[InviteLine]
    revoked: int
    expires_at: datetime


def chosen(session: Session, selection: Selection) -> list[RosterRow]:
    """Whom an invite run would reach: one partner by code (an admin too), else active dealers and
    captains — all of them, or those in the segment and/or without a chat account."""
    selection.check("partners invite")
    return listing(session, selection, invitable=True)


def issue(session: Session, selection: Selection, ttl_days: int, bot_username: str, now: datetime) -> Batch:
    """A fresh invite for every chosen partner; `error.nobody_chosen` if the selection is empty."""
    rows = chosen(session, selection)
    if not rows:
        raise DataError("onboard.nobody_chosen")
    issued = issue_invites(session, [r.id for r in rows], ttl_days, now)
    lines = [InviteLine(r.code, r.name, r.team, r.team_name, r.role, issued.codes[r.id], issued.expires_at,
                        telegram_link(bot_username, issued.codes[r.id])) for r in rows]
    return Batch(lines, issued.revoked, issued.expires_at)


def profile(session: Session, partner: Partner, now: datetime) -> dict[str, Any]:
    """A partner for an admin: attributes, chat accounts, points balance, and the open contests they
    take part in (with their rank and score in the running ones). Times are UTC datetimes."""
    team = teams.team_by_id(session, team_id=partner.team_id) if partner.team_id else None
    contests = []
    contest: AnyContest  # a listed row, or the fresh contest once its standings are rebuilt
    for contest in views.open_contests(session, now):
        if not views.takes_part(session, contest, partner):
            continue
        status = contest_ops.status(contest, now)
        entry: dict[str, Any] = {"id": contest.id, "name": contest.name, "metric": contest.metric,
                                 "scope": contest.scope, "status": status, "rank": None, "score": None,
                                 "eligible": None, "by_team": contest.scope == "team"}
        if status != "upcoming":
            contest = views.fresh(session, contest)
            line = standings.line_of_partner(session, contest, partner.id)
            if contest.scope == "team" and partner.team_id is not None:
                team_line = standings.line_of_team(session, contest, partner.team_id)
                line = team_line if team_line is not None else line
            if line is not None:
                entry.update(rank=line.rank, score=line.score, eligible=line.eligible)
        contests.append(entry)
    return {"partner": partner.code, "name": partner.name, "role": partner.role, "active": partner.active,
            "team": team.code if team else None, "team_name": team.name if team else None,
            "region": partner.region, "city_tier": partner.city_tier, "industry": partner.industry,
            "size": partner.size, "joined_on": partner.joined_on, "locale": partner.locale,
            "points": balance(session, partner.id),
            "accounts": accounts_of(session, partner), "contests": contests}
