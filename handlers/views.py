"""Data for replies about contests: the public top, one's own line, gaps, rules in plain words.

Only the public top N and the asker's own line (and, for a captain, their own team's members)
ever leave here: the bottom of a ranking is never shown to anyone but the partner themselves.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from datetime import datetime
from typing import Any

from sqlmodel import Session

from handlers.parse import id_arg, is_number
from models import contests as contest_ops
from models import partners, standings
from models.kinds import Role, Scope
from models.rows import AnyContest, ContestRow, Member
from models.rules import next_tier
from models.segments import matches
from models.tables import Contest, Partner, Team

PUBLIC_TOP_MAX = 10


def contest_info(contest: AnyContest, now: datetime) -> dict[str, Any]:
    return {"id": contest.id, "name": contest.name, "metric": contest.metric, "scope": contest.scope,
            "team_score": contest.team_score, "start": contest.start_at, "end": contest.end_at,
            "tz": contest.timezone, "status": contest_ops.status(contest, now), "top_n": contest.top_n,
            "grace_hours": contest.grace_seconds // 3600, "grace_seconds": contest.grace_seconds,
            "segment": contest.segment, "min_tenure_days": contest.min_tenure_days, "min_score": contest.min_score,
            "min_satisfaction": contest.min_satisfaction, "prizes": contest.prizes, "tiers": contest.tiers,
            "recur": contest.recur, "min_ratings": contest.min_ratings, "featured": contest.featured}


def open_contests(session: Session, now: datetime) -> list[ContestRow]:
    """Active and settling contests first (the featured ones first, then soonest end first), then
    upcoming ones; a cancelled contest is never listed."""
    rows = contest_ops.open_contest_rows(session)
    return sorted(rows, key=lambda c: (contest_ops.status(c, now) == "upcoming", not c.featured, c.end_at, c.id))


def fresh(session: Session, contest: AnyContest) -> AnyContest:
    """The contest with its standings rebuilt if imports changed the data since they were built.

    A rebuild reloads an ORM contest in place; a plain row is read again.
    """
    rebuilt = standings.ensure_fresh(session, contest)
    if rebuilt and isinstance(contest, ContestRow):
        return contest_ops.contest_row(session, contest_id=contest.id)
    return contest


def takes_part(session: Session, contest: AnyContest, partner: Partner | Member) -> bool:
    """Admins never take part; a team contest needs a team; then the contest's segment decides."""
    if partner.role == Role.ADMIN or (contest.scope == Scope.TEAM and partner.team_id is None):
        return False
    return matches(session, contest.segment or {}, partner)


def pick_contest(session: Session, partner: Partner | Member | None, arg: str | None, now: datetime,
                 scope: str | None = None) -> tuple[AnyContest | None, list[ContestRow]]:
    """The contest a question is about: by id or name fragment, else the partner's first running one
    (a featured one first). A cancelled contest is found by neither."""
    candidates = [c for c in open_contests(session, now) if contest_ops.status(c, now) != "upcoming"]
    if scope:
        candidates = [c for c in candidates if c.scope == scope]
    if arg:
        found: Contest | None = None
        if is_number(arg):
            ident = id_arg(arg)
            found = contest_ops.contest_by_id(session, contest_id=ident) if ident is not None else None
            if found is not None and found.cancelled_at is not None:
                found = None
        else:
            found = contest_ops.contest_by_name(session, fragment=arg)
        return found, candidates
    if partner is not None and partner.role != Role.ADMIN:
        mine = [c for c in candidates if takes_part(session, c, partner)]
        return (mine[0] if mine else None), candidates
    return (candidates[0] if candidates else None), candidates


def names_of(session: Session, lines: list[Any]) -> dict[str, dict[int, str]]:
    pids = {line.partner_id for line in lines if line.partner_id}
    tids = {line.team_id for line in lines if line.team_id}
    return {"partner": partners.partner_names(session, ids=pids), "team": partners.team_names(session, ids=tids)}


def line_view(line: Any, names: dict[str, dict[int, str]]) -> dict[str, Any]:
    name = names["team"].get(line.team_id, "") if line.kind == "team" else names["partner"].get(line.partner_id, "")
    return {"rank": line.rank, "position": line.position, "name": name, "score": line.score, "tier": line.tier,
            "eligible": line.eligible, "reason": line.reason, "prize_points": line.prize_points,
            "rebate_pct": line.rebate_pct}


_NO_GAPS: dict[str, Any] = {"gap_place": None, "gap_tier": None, "next_tier": None, "next_rank": None}


def gaps(session: Session, contest: AnyContest, line: Any) -> dict[str, Any]:
    """How far to the next place and to the next tier."""
    if not line.eligible:
        return dict(_NO_GAPS)
    above = standings.next_above(session, contest, line)
    return gaps_to(contest.tiers, line, above.score if above is not None else None,
                   above.rank if above is not None else None)


def gaps_to(tiers: list[dict[str, Any]], line: Any, above_score: int | None, above_rank: int | None) -> dict[str, Any]:
    """`gaps` from a line and the next place up already read (`standings.place_of_partner`)."""
    out = dict(_NO_GAPS)
    if not line.eligible:
        return out
    if above_score is not None and line.position is not None:
        out["gap_place"] = above_score - line.score
        out["next_rank"] = above_rank
    tier = next_tier(tiers, line.score)
    if tier is not None:
        out["gap_tier"] = tier["threshold"] - line.score
        out["next_tier"] = tier["name"]
    return out


def place_view(session: Session, *, contest_id: int, partner_id: int) -> dict[str, Any] | None:
    """A partner's rank, score and gaps in a contest known by its id, read as `/rank` reads them (None:
    no such contest or no line): the contest's state, the line and the next place up in one
    statement (`standings.place_in`; stale standings are rebuilt first)."""
    found = standings.place_in(session, contest_id=contest_id, partner_id=partner_id)
    if found is None:
        return None
    state, line = found
    if line is None:
        return None
    return {"rank": line.rank, "score": line.score, "eligible": line.eligible,
            **gaps_to(state.tiers, line, line.above_score, line.above_rank)}


def rank_view(session: Session, contest: AnyContest, partner: Partner | Member | None,
              now: datetime) -> dict[str, Any]:
    """The public top N of a contest and the asker's own standing."""
    contest = fresh(session, contest)
    board, ranked = public_board(session, contest)
    own = team_line = None
    if partner is not None and partner.role != Role.ADMIN:
        own = standings.place_of_partner(session, contest, partner.id)
        if contest.scope == Scope.TEAM and partner.team_id is not None:
            team_line = standings.line_of_team(session, contest, partner.team_id)
    names = names_of(session, [team_line] if team_line is not None else [])
    if own is not None and partner is not None:
        names["partner"][partner.id] = partner.name  # one's own line: no need to ask
    view: dict[str, Any] = {"contest": contest_info(contest, now), "top": [dict(x) for x in board],
                            "me": None, "team": None, "ranked": ranked}
    if own is not None:
        view["me"] = {**line_view(own, names), **(gaps_to(contest.tiers, own, own.above_score, own.above_rank)
                                                  if own.kind == "partner" else _NO_GAPS)}
        share = None
        if team_line is not None and own.eligible and adds_up(contest) and team_line.score > 0:
            share = _share(own.score, team_line.score)
        view["me"]["share"] = share
    if team_line is not None:
        view["team"] = {**line_view(team_line, names), **gaps(session, contest, team_line)}
    return view


_BOARDS: OrderedDict[tuple[Any, ...], tuple[list[dict[str, Any]], int]] = OrderedDict()
_BOARDS_LOCK = threading.Lock()


def _board_key(contest_id: int, standings_at: datetime | None, closed_at: datetime | None,
               top_n: int) -> tuple[Any, ...]:
    """What a cached board is kept under: the moment the standings were built (or frozen) and the
    board's length. A rebuild in any process sets a new `standings_at`, so a stale board is never
    served; `closed_at` keys the frozen results."""
    return (contest_id, standings_at, closed_at, top_n)


def _cached_board(key: tuple[Any, ...]) -> tuple[list[dict[str, Any]], int] | None:
    with _BOARDS_LOCK:
        found = _BOARDS.get(key)
        if found is not None:
            _BOARDS.move_to_end(key)
        return found


def public_board(session: Session, contest: AnyContest) -> tuple[list[dict[str, Any]], int]:
    """The public top lines with names, and how many are ranked — the same for every asker.

    Kept per process (`_board_key`); `contest` must be fresh (`fresh`), as every caller has it.
    """
    key = _board_key(contest.id, contest.standings_at, contest.closed_at, contest.top_n)
    found = _cached_board(key)
    if found is not None:
        return found
    top = standings.top(session, contest, min(contest.top_n, PUBLIC_TOP_MAX))
    names = names_of(session, list(top))
    found = ([line_view(x, names) for x in top], standings.ranked_count(session, contest=contest))
    with _BOARDS_LOCK:
        _BOARDS[key] = found
        while len(_BOARDS) > 64:
            _BOARDS.popitem(last=False)
    return found


def public_board_of(session: Session, *, contest_id: int) -> tuple[list[dict[str, Any]], int] | None:
    """`public_board` of a contest known by its id (None: no such contest), for a caller that has not
    read the contest: its standings' version first (`standings.standings_state`, one primary-key
    read of a few columns), and while that matches a board this process built, nothing more is read. Stale
    standings are rebuilt first, as `/rank` does."""
    state = standings.standings_state(session, contest_id=contest_id)
    if state is None:
        return None
    if not state.stale:
        found = _cached_board(_board_key(contest_id, state.standings_at, state.closed_at, state.top_n))
        if found is not None:
            return found
    contest = fresh(session, contest_ops.contest_row(session, contest_id=contest_id))
    return public_board(session, contest)


def team_view(session: Session, contest: AnyContest | None, team: Team, asker: Partner,
              now: datetime) -> dict[str, Any]:
    """A team's standing and its members' contributions (the names and numbers only for the team's
    captain and admins; a dealer sees the team's total and their own share)."""
    see_members = asker.role == Role.ADMIN or (asker.role == Role.CAPTAIN and asker.team_id == team.id)
    members = partners.team_members(session, team_id=team.id)
    view: dict[str, Any] = {"team": {"name": team.name, "code": team.code, "size": len(members)},
                            "see_members": see_members, "admin": asker.role == Role.ADMIN,  # no cheering an admin on
                            "contest": None, "line": None, "members": [], "mine": None}
    if contest is None:
        view["members"] = [{"name": m.name, "role": m.role} for m in members] if see_members else []
        return view
    contest = fresh(session, contest)
    view["contest"] = contest_info(contest, now)
    if contest.scope == Scope.TEAM:
        line = standings.line_of_team(session, contest, team.id)
        lines = standings.members_of(session, contest, team.id)
    else:
        line = None
        ids = [m.id for m in members]
        lines = standings.partner_lines(session, contest=contest, partner_ids=ids)
    names = names_of(session, [*lines, *([line] if line else [])])
    if line is not None:
        view["line"] = {**line_view(line, names), **gaps(session, contest, line)}
    total = sum(x.score for x in lines if x.eligible)
    view["total"] = total
    shares = adds_up(contest)
    if see_members:
        view["members"] = [{**line_view(x, names), "share": _share(x.score, total) if x.eligible and shares else None}
                           for x in lines]
    mine = next((x for x in lines if x.partner_id == asker.id), None)
    if mine is not None:
        view["mine"] = {**line_view(mine, names),
                        "share": _share(mine.score, total) if mine.eligible and shares else None}
    return view


def adds_up(contest: AnyContest) -> bool:
    """Whether members' scores add up to the team's, so that a member's share of it means something.

    Not for attainment or satisfaction (a member's 47.1% is their own rate, not a part of the
    team's), nor for a team scored by its average.
    """
    return contest.metric not in ("attainment", "satisfaction") and (contest.scope != Scope.TEAM
                                                                     or contest.team_score == "sum")


def _share(score: int, total: int) -> int | None:
    """Share of the team total in hundredths of a percent."""
    from models.values import ratio_hundredths

    return ratio_hundredths(score, total, 100) if total > 0 else None
