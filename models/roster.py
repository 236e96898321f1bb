"""Who is in the program: partners chosen by code, segment or binding, their chat accounts, the teams.

`choose` is what `partners invite` and `partners list` select by; `listing` and `teams` are the
rows the command line (and later the admin console) shows. Plain values, no words.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import exists, func, or_, select
from sqlmodel import Session, col

from models.contests import partner_by_code
from models.errors import DataError
from models.segments import S, where
from models.tables import ChatIdentity, Partner, Team
from models.values import as_utc

TAKING_PART = ("dealer", "captain")  # who `--all` invites: admins run the program, they are invited by code


@dataclass(frozen=True)
class Selection:
    """Which partners: one by `code`; or `everyone`; or those in `segment` and/or `unbound` (no
    active chat account). Only one `code` or `everyone`, else the segment and binding filters."""

    code: str | None = None
    everyone: bool = False
    segment: dict[str, str] | None = None
    unbound: bool = False
    bound: bool = False  # only partners with an active chat account (the console's filter)
    text: str | None = None  # a part of the code or the name, in any case (the console's search)

    def check(self, option: str) -> None:
        """One way of choosing: a code, `--all`, or the filters (which may be combined)."""
        filtered = bool(self.segment) or self.unbound or self.bound or bool(self.text)
        ways = [self.code is not None, self.everyone, filtered]
        if sum(ways) != 1:
            raise DataError("onboard.choose_partners", command=option)


@dataclass(frozen=True)
class RosterRow:
    """A partner as `partners list` shows them: attributes, where they are bound, when last seen."""

    id: int
    code: str
    name: str
    team: str | None
    team_name: str | None
    region: str | None
    city_tier: int | None
    role: str
    active: bool
    platforms: tuple[str, ...]
    last_seen_at: datetime | None

    def doc(self) -> dict[str, Any]:
        return {"code": self.code, "name": self.name, "team": self.team, "region": self.region,
                "city_tier": self.city_tier, "role": self.role, "active": self.active,
                "platforms": list(self.platforms), "last_seen_at": self.last_seen_at}


def _bound(session: Session, ids: Collection[int] | None = None) -> dict[int, tuple[tuple[str, ...], datetime | None]]:
    """Each partner's active chat platforms and the last time any of their accounts was seen
    (of the partners `ids`, or of everyone)."""
    stmt = select(col(ChatIdentity.partner_id), col(ChatIdentity.platform), col(ChatIdentity.active),
                  col(ChatIdentity.last_seen_at), col(ChatIdentity.bound_at))
    if ids is not None:
        stmt = stmt.where(col(ChatIdentity.partner_id).in_(list(ids)))
    found: dict[int, tuple[set[str], datetime | None]] = {}
    for pid, platform, active, seen, bound in session.execute(stmt).all():
        platforms, last = found.setdefault(pid, (set(), None))
        if active:
            platforms.add(platform)
        moment = as_utc(seen or bound) if (seen or bound) else None
        if moment is not None and (last is None or moment > last):
            found[pid] = (platforms, moment)
    return {pid: (tuple(sorted(p)), last) for pid, (p, last) in found.items()}


def _like(text: str) -> str:
    """`text` as a LIKE pattern that finds it anywhere, its own % and _ taken literally."""
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _chosen(stmt: S, selection: Selection, *, invitable: bool) -> S:
    """`stmt` (a query over `Partner`) kept to the partners of `selection` chosen by filters: the
    one filter of `partners list`, `partners invite` and the console's partner list."""
    if invitable:
        stmt = stmt.where(col(Partner.role).in_(TAKING_PART), col(Partner.active).is_(True))
    if selection.segment:
        stmt = where(stmt, selection.segment)
    bound = exists().where(col(ChatIdentity.partner_id) == col(Partner.id), col(ChatIdentity.active).is_(True))
    if selection.unbound:
        stmt = stmt.where(~bound)
    elif selection.bound:
        stmt = stmt.where(bound)
    if selection.text:
        pattern = _like(selection.text.strip())
        stmt = stmt.where(or_(col(Partner.code).ilike(pattern, escape="\\"),
                              col(Partner.name).ilike(pattern, escape="\\")))
    return stmt


def _rows(session: Session, partners: Sequence[Partner], bound: dict[int, tuple[tuple[str, ...], datetime | None]]
          ) -> list[RosterRow]:
    team_ids = {p.team_id for p in partners if p.team_id is not None}
    teams = {t.id: t for t in session.execute(select(Team).where(col(Team.id).in_(team_ids))).scalars()} \
        if team_ids else {}
    rows: list[RosterRow] = []
    for p in partners:
        team = teams.get(p.team_id) if p.team_id else None
        platforms, seen = bound.get(p.id, ((), None))
        rows.append(RosterRow(p.id, p.code, p.name, team.code if team else None,
                              team.name if team else None, p.region, p.city_tier, p.role, p.active, platforms, seen))
    return rows


def listing(session: Session, selection: Selection | None = None, *, invitable: bool = False) -> list[RosterRow]:
    """The chosen partners by code, with their team and binding. `invitable` keeps, for `--all`
    and the filters, only active dealers and captains (an admin is invited by naming them)."""
    selection = selection or Selection()
    if selection.code is not None:  # in any case; an unknown code is an error, not an empty list
        return _rows(session, [partner := partner_by_code(session, selection.code)], _bound(session, [partner.id]))
    stmt = _chosen(select(Partner), selection, invitable=invitable).order_by(col(Partner.code))
    partners = list(session.execute(stmt).scalars())
    return _rows(session, partners, _bound(session, [p.id for p in partners] if len(partners) < 500 else None))


def count(session: Session, *, selection: Selection, invitable: bool) -> int:
    """How many partners `listing` would give for `selection` (chosen by filters), without loading them."""
    if selection.code is not None:
        return 1
    everyone = Selection() if selection.everyone else selection
    stmt = _chosen(select(func.count()).select_from(Partner), everyone, invitable=invitable)
    return int(session.execute(stmt).scalar_one())


def search(session: Session, *, selection: Selection, offset: int, limit: int, invitable: bool = False
           ) -> tuple[list[RosterRow], int]:
    """One page of the chosen partners by code, and how many were chosen in all (the console's list)."""
    total = count(session, selection=selection, invitable=invitable)
    stmt = (_chosen(select(Partner), selection, invitable=invitable).order_by(col(Partner.code))
            .offset(offset).limit(limit))
    partners = list(session.execute(stmt).scalars())
    return _rows(session, partners, _bound(session, [p.id for p in partners])), total


@dataclass(frozen=True)
class Choices:
    """What the partner list's filters offer: the teams (code, name) and the regions in use."""

    teams: list[tuple[str, str]]
    regions: list[str]


def choices(session: Session) -> Choices:
    teams = [(code, name) for code, name in session.execute(select(col(Team.code), col(Team.name))
                                                            .order_by(col(Team.code))).all()]
    regions = [r for (r,) in session.execute(select(col(Partner.region)).where(col(Partner.region).is_not(None))
                                             .distinct().order_by(col(Partner.region))).all()]
    return Choices(teams, regions)


@dataclass(frozen=True)
class TeamRow:
    """A team as `teams list` shows it: active members, how many are bound to a chat account, captains."""

    code: str
    name: str
    members: int
    bound: int
    captains: tuple[str, ...]  # names (codes in `doc`)
    captain_codes: tuple[str, ...]

    @property
    def bound_pct(self) -> int | None:
        """The bound share in whole percent, rounded down (None for an empty team)."""
        return self.bound * 100 // self.members if self.members else None

    def doc(self) -> dict[str, Any]:
        return {"code": self.code, "name": self.name, "members": self.members, "bound": self.bound,
                "bound_pct": self.bound_pct,
                "captains": [{"code": c, "name": n} for c, n in zip(self.captain_codes, self.captains, strict=True)]}


def teams(session: Session) -> list[TeamRow]:
    """Every team by code; members are its active partners (admins too, if an admin has a team)."""
    bound = _bound(session)
    members: dict[int, list[Partner]] = {}
    for p in session.execute(select(Partner).where(col(Partner.active).is_(True), col(Partner.team_id).is_not(None))
                             .order_by(col(Partner.code))).scalars():
        members.setdefault(p.team_id, []).append(p)
    rows = []
    for team in session.execute(select(Team).order_by(col(Team.code))).scalars():
        people = members.get(team.id, [])
        captains = [p for p in people if p.role == "captain"]
        rows.append(TeamRow(team.code, team.name, len(people),
                            sum(1 for p in people if bound.get(p.id, ((), None))[0]),
                            tuple(p.name for p in captains), tuple(p.code for p in captains)))
    return rows
