"""Who is winning: scores from the sales ledger, eligibility, the tie rule, tiers and prizes.

`compute` derives a contest's standings from the ledger (the truth). The `Standing` table is a
cache of that result for open contests, rebuilt when imports mark the contest dirty; frozen
results of closed contests live in `ContestResult` and never change.

The tie rule: higher score first; equal scores are ordered by who reached that score first (the
time of the last sale that counted towards the score); still equal, they share the rank and the
next rank is skipped (1, 2, 2, 4). A score of zero is listed but never wins a prize.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, NamedTuple

from sqlalchemy import Row, and_, bindparam, case, delete, func, select, update
from sqlalchemy.orm import aliased
from sqlmodel import Session, col

from models import tallies
from models.db import Prepared, bind_rows, insert_rows, read, table_of
from models.indexes import builds_running, finish_builds, indexes_deferred, start_builds
from models.kinds import Metric, Role, Scope
from models.plain import ByRawRow, read_datetime, read_json
from models.rows import AnyContest
from models.rules import prize_for_rank, tier_for
from models.tables import Contest, ContestResult, Partner, Sale, Standing, Target, Team
from models.tallies import Sums
from models.values import as_utc, ratio_hundredths, utcnow, zone


@dataclass
class Entry:
    """One line of a contest's standings (a partner, a team, or a team member's contribution)."""

    kind: str
    partner_id: int | None
    team_id: int | None
    score: int = 0
    reached_at: datetime | None = None
    eligible: bool = True
    reason: dict[str, Any] = field(default_factory=dict)
    rank: int | None = None
    position: int | None = None
    tier: str | None = None
    prize_points: int = 0
    rebate_pct: str | None = None
    revenue_fen: int | None = None

    def as_row(self, contest_id: int) -> dict[str, Any]:
        return {"contest_id": contest_id, "kind": self.kind, "partner_id": self.partner_id,
                "team_id": self.team_id, "score": self.score, "reached_at": self.reached_at,
                "eligible": self.eligible, "reason": self.reason, "rank": self.rank,
                "position": self.position, "tier": self.tier, "prize_points": self.prize_points,
                "rebate_pct": self.rebate_pct, "revenue_fen": self.revenue_fen}


@dataclass
class _Agg:
    """A partner's raw activity in the period."""

    revenue: int = 0
    units: int = 0
    orders: int = 0
    margin: int = 0
    ratings_sum: int = 0
    ratings_n: int = 0
    new_customers: int = 0
    target: int | None = None
    reached: dict[str, datetime | None] = field(default_factory=dict)


# --- participants and activity -----------------------------------------------------------------

Participant = tuple[int, int | None, date | None]
"""(partner id, team id, joined_on) of one partner taking part in a contest."""


def participants(session: Session, contest: Contest) -> list[Participant]:
    """(partner id, team id, joined_on) of the active, non-admin partners in the contest's segment."""
    stmt = _participants(contest, col(Partner.id), col(Partner.team_id), col(Partner.joined_on))
    return [tuple(r) for r in read(session, stmt).all()]  # plain rows: 100,000 of them at every rebuild


def _participants(contest: Contest, *columns: Any) -> Any:
    """The query of `participants`, selecting `columns`."""
    stmt = (select(*columns).select_from(Partner)
            .where(col(Partner.active).is_(True), col(Partner.role) != Role.ADMIN))
    seg = contest.segment or {}
    for key in ("region", "industry", "size"):
        if key in seg:
            stmt = stmt.where(getattr(Partner, key) == seg[key])
    if "city_tier" in seg:
        stmt = stmt.where(col(Partner.city_tier) == int(seg["city_tier"]))
    if "team" in seg:
        stmt = stmt.join(Team, col(Team.id) == Partner.team_id).where(col(Team.code) == seg["team"])
    return stmt


def activity(session: Session, contest: Contest, sums: dict[int, Sums] | None = None) -> dict[int, _Agg]:
    """Per-partner sums over the contest period, with the time the contest's metric was last moved.

    Only what the contest's rules read is summed (`_needs`): the revenue always (every line keeps
    it), the metric's own figure, the ratings when a rule reads them. A revenue contest then reads
    nothing but the `(occurred_at, partner_id, amount_fen, units)` index — no row of the table —
    which was most of a rebuild's time after a large import (the query 2.7× faster at 1,000,000 sales).
    The figures not asked for stay 0 and are never read.

    With `sums` (a sales import's `models.tallies.Tally.kept()` for this contest: the same sums,
    kept as the rows went in), the period's sales are not read at all.
    """
    if sums is None:
        aggs = _period_aggs(session, contest)
    else:
        names, metric = _needs(contest), str(contest.metric)
        aggs = {}
        for pid, kept in sums.items():
            agg = _Agg()
            values, agg.reached[metric] = tallies.figures(kept, names, metric)
            for name, value in values.items():
                setattr(agg, name, value)
            aggs[pid] = agg
    if contest.metric == Metric.NEW_CUSTOMERS:
        for pid, count, reached_at in _new_customers(session, contest):
            aggs.setdefault(pid, _Agg()).new_customers = count
            aggs[pid].reached["new_customers"] = reached_at
    if contest.metric == Metric.ATTAINMENT:
        for pid, target in _targets(session, contest).items():
            aggs.setdefault(pid, _Agg()).target = target
    return aggs


def _period_aggs(session: Session, contest: Contest) -> dict[int, _Agg]:
    """The GROUP BY of `activity`: the sums `_needs` names and the metric's own time, by partner."""
    s = Sale
    when = col(s.occurred_at)
    satisfaction, margin = col(s.satisfaction), col(s.margin_fen)
    # A reversal (`models.corrections`) takes its original's order and rating back out.
    sign = case((col(s.reverses).is_(None), 1), else_=-1)
    sums = {"revenue": func.sum(col(s.amount_fen)), "units": func.sum(col(s.units)), "orders": func.sum(sign),
            "margin": func.sum(func.coalesce(margin, 0)), "ratings_sum": func.sum(satisfaction * sign),
            "ratings_n": func.sum(case((satisfaction.is_not(None), sign), else_=0))}
    moved: dict[str, Any] = {  # the sales that move each metric's score (orders: every sale)
        Metric.REVENUE: col(s.amount_fen) > 0, Metric.ATTAINMENT: col(s.amount_fen) > 0,
        Metric.UNITS: col(s.units) > 0, Metric.MARGIN: and_(margin.is_not(None), margin != 0),
        Metric.SATISFACTION: satisfaction.is_not(None)}
    names = _needs(contest)
    reached: Any = None
    if contest.metric == Metric.ORDERS:
        reached = func.max(when)
    elif contest.metric in moved:
        reached = func.max(case((moved[contest.metric], when)))
    columns = [col(s.partner_id), *(sums[name] for name in names)]
    if reached is not None:
        columns.append(reached)
    stmt = (select(*columns).where(when >= contest.start_at, when < contest.end_at).group_by(col(s.partner_id)))
    finish_builds(session.connection())  # the sale table's indexes, if this transaction's import owes them
    aggs: dict[int, _Agg] = {}
    for row in read(session, stmt):
        agg = _Agg()
        for name, value in zip(names, row[1:], strict=False):
            setattr(agg, name, int(value or 0))
        if reached is not None:
            agg.reached[contest.metric] = _utc(row[-1])
        aggs[row[0]] = agg
    return aggs


def windows(session: Session, bound: Callable[[datetime], Any]) -> list[tallies.Window]:
    """A `models.tallies.Window` for each open contest whose standings a sales import can keep
    (`tallies.TALLIED`), its bounds given by `bound` (the import's time format), with the sums the
    ledger holds in its period now: none when no sale is in it (one index probe), else
    `activity`'s GROUP BY. Called before the import's first row, with the import holding
    SQLite's write lock; on PostgreSQL the contests' rows are locked (as `refresh` locks them),
    so no other import commits sales these sums miss before this one commits."""
    stmt = select(Contest).where(col(Contest.closed_at).is_(None), col(Contest.cancelled_at).is_(None),
                                 col(Contest.metric).in_(sorted(tallies.TALLIED)))
    if session.connection().dialect.name != "sqlite":
        stmt = stmt.with_for_update()
    found = []
    for contest in session.execute(stmt.order_by(col(Contest.id))).scalars():
        base: dict[int, Sums] = {}
        any_sale = session.execute(select(col(Sale.id)).where(col(Sale.occurred_at) >= contest.start_at,
                                                              col(Sale.occurred_at) < contest.end_at).limit(1))
        if any_sale.first() is not None:
            names, metric = _needs(contest), str(contest.metric)
            base = {pid: tallies.sums_of(names, metric, {name: getattr(agg, name) for name in names},
                                         agg.reached.get(metric))
                    for pid, agg in _period_aggs(session, contest).items()}
        found.append(tallies.Window(contest.id, bound(as_utc(contest.start_at)), bound(as_utc(contest.end_at)),
                                    str(contest.metric), _needs(contest), base))
    return found


def _needs(contest: Contest) -> list[str]:
    """The sums of `_Agg` the contest's scoring and eligibility rules read (`_score`, `_team_score`,
    `_ratings_problem`, `_threshold_problem`): the revenue always, the metric's own, the ratings
    for a satisfaction contest or a minimum satisfaction."""
    names = ["revenue"]
    if contest.metric in (Metric.UNITS, Metric.ORDERS, Metric.MARGIN):
        names.append(str(contest.metric))
    if contest.metric == Metric.SATISFACTION or contest.min_satisfaction is not None:
        names += ["ratings_sum", "ratings_n"]
    return names


def _utc(value: datetime | None) -> datetime | None:
    return as_utc(value) if value is not None else None


def _new_customers(session: Session, contest: Contest) -> list[tuple[int, int, datetime | None]]:
    """Customers who bought from a partner in the period and never from that partner before it.

    The time a partner reached their count is the first sale to the last of those customers.
    """
    s, p, r = Sale, aliased(Sale), aliased(Sale)
    earlier = (select(col(p.id)).where(col(p.partner_id) == s.partner_id, col(p.customer) == s.customer,
                                       col(p.occurred_at) < contest.start_at).exists())
    reversed_ = select(col(r.id)).where(col(r.reverses) == s.id).exists()  # a voided sale bought nothing
    stmt = (select(col(s.partner_id), col(s.customer), func.min(col(s.occurred_at)))
            .where(col(s.occurred_at) >= contest.start_at, col(s.occurred_at) < contest.end_at,
                   col(s.customer).is_not(None), col(s.reverses).is_(None), ~reversed_, ~earlier)
            .group_by(col(s.partner_id), col(s.customer)))
    per: dict[int, list[datetime]] = defaultdict(list)
    finish_builds(session.connection())
    for pid, _customer, first in session.execute(stmt):
        per[pid].append(as_utc(first))
    return [(pid, len(times), max(times)) for pid, times in per.items()]


def _targets(session: Session, contest: Contest) -> dict[int, int]:
    """Each partner's target for the contest period: the shortest dated target period that covers
    it, else — for a period within one calendar month — the partner's recurring monthly amount."""
    return _best_targets(session, contest, [])


def target_of(session: Session, *, contest: AnyContest, partner_id: int) -> int | None:
    """One partner's target for the contest period (`_targets`' rule), by its index."""
    return _best_targets(session, contest, [col(Target.partner_id) == partner_id]).get(partner_id)


def _best_targets(session: Session, contest: AnyContest, where: list[Any]) -> dict[int, int]:
    stmt = (select(col(Target.partner_id), col(Target.period_start), col(Target.period_end), col(Target.target_fen),
                   col(Target.monthly))
            .where(*_covering(contest), *where))
    best: dict[int, tuple[int, int]] = {}
    for pid, start, end, target, monthly in session.execute(stmt):
        length = 10**7 if monthly else (end - start).days  # a dated target wins over the monthly amount
        if pid not in best or length < best[pid][0]:
            best[pid] = (length, target)
    return {pid: target for pid, (_length, target) in best.items()}


def _covering(contest: AnyContest) -> list[Any]:
    """The targets that can be a partner's target for the contest period (`_targets`): a dated one
    covering it, or the recurring monthly amount when the period lies within one calendar month."""
    tz = zone(contest.timezone)
    first = as_utc(contest.start_at).astimezone(tz).date()
    last = (as_utc(contest.end_at).astimezone(tz) - timedelta(microseconds=1)).date()
    where = [col(Target.period_start) <= first, col(Target.period_end) >= last]
    if (first.year, first.month) != (last.year, last.month):
        where.append(col(Target.monthly).is_(False))
    return where


def lacking_target_count(session: Session, *, contest: Contest) -> int:
    """How many `lacking_targets` there are, counted in the database (one index probe per participant)."""
    if contest.metric != "attainment":
        return 0
    has = select(col(Target.id)).where(col(Target.partner_id) == Partner.id, *_covering(contest)).exists()
    stmt = _participants(contest, func.count()).where(~has)
    if contest.scope == "team":
        stmt = stmt.where(col(Partner.team_id).is_not(None))
    return int(session.execute(stmt).scalar_one())


def lacking_targets(session: Session, contest: Contest) -> list[str]:
    """Codes of the participants of an attainment contest without a target for its period, sorted."""
    if contest.metric != "attainment":
        return []
    have = _targets(session, contest)
    missing = [pid for pid, team_id, _joined in participants(session, contest)
               if pid not in have and (contest.scope != "team" or team_id is not None)]
    if not missing:
        return []
    return sorted(session.execute(select(col(Partner.code)).where(col(Partner.id).in_(missing))).scalars())


# --- scoring -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Rules:
    """What `compute` reads of a contest, as plain values read once: 100,000 participants' lines
    read a contest's fields ~700,000 times, through the ORM's attribute access (0.5 s), and worked
    out the first day of the period again for each (tenure)."""

    metric: str
    scope: str
    team_score: str
    min_tenure_days: int | None
    min_score: int | None
    min_satisfaction: int | None
    min_ratings: int
    prizes: list[dict[str, Any]]
    tiers: list[dict[str, Any]]
    start_day: date

    @classmethod
    def of(cls, contest: Contest) -> _Rules:
        return cls(str(contest.metric), str(contest.scope), str(contest.team_score), contest.min_tenure_days,
                   contest.min_score, contest.min_satisfaction, contest.min_ratings, list(contest.prizes),
                   list(contest.tiers), as_utc(contest.start_at).astimezone(zone(contest.timezone)).date())



def _score(metric: str, agg: _Agg) -> int:
    if metric == Metric.REVENUE:
        return agg.revenue
    if metric == Metric.UNITS:
        return agg.units * 100
    if metric == Metric.ORDERS:
        return agg.orders * 100
    if metric == Metric.MARGIN:
        return agg.margin
    if metric == Metric.NEW_CUSTOMERS:
        return agg.new_customers * 100
    if metric == Metric.ATTAINMENT:
        return ratio_hundredths(agg.revenue, agg.target or 0, 100)
    if metric == Metric.SATISFACTION:
        return ratio_hundredths(agg.ratings_sum, agg.ratings_n)
    raise ValueError(metric)


def _tenure_problem(contest: _Rules, joined_on: date | None) -> dict[str, Any] | None:
    if not contest.min_tenure_days:
        return None
    start_day = contest.start_day
    if joined_on is None:
        return {"code": "not_eligible.tenure_unknown", "days": contest.min_tenure_days}
    tenure = (start_day - joined_on).days
    if tenure < contest.min_tenure_days:
        return {"code": "not_eligible.tenure", "days": contest.min_tenure_days, "tenure": max(tenure, 0),
                "joined_on": joined_on.isoformat()}
    return None


def _threshold_problem(contest: _Rules, score: int, ratings_sum: int, ratings_n: int) -> dict[str, Any] | None:
    if contest.min_satisfaction is not None:
        if ratings_n == 0:
            return {"code": "not_eligible.no_ratings", "min": contest.min_satisfaction}
        avg = ratio_hundredths(ratings_sum, ratings_n)
        if avg < contest.min_satisfaction:
            return {"code": "not_eligible.min_satisfaction", "min": contest.min_satisfaction, "value": avg}
    if contest.min_score is not None and score < contest.min_score:
        return {"code": "not_eligible.min_score", "min": contest.min_score, "value": score}
    return None


def _ratings_problem(contest: _Rules, ratings_n: int) -> dict[str, Any] | None:
    """An average needs enough ratings to mean something (`Contest.min_ratings`)."""
    if contest.metric == "satisfaction" and ratings_n < contest.min_ratings:
        return {"code": "not_eligible.few_ratings", "needed": contest.min_ratings, "count": ratings_n}
    return None


def compute(session: Session, contest: Contest, sums: dict[int, Sums] | None = None) -> list[Entry]:
    """The contest's standings, derived from the ledger now (with `sums`: its period's sums, kept
    by a sales import, `activity`)."""
    people = participants(session, contest)
    rules = _Rules.of(contest)
    aggs = activity(session, contest) if sums is None else activity(session, contest, sums)
    # Nothing below reads: index builds a sales import of this transaction owes run meanwhile.
    start_builds(session.connection())
    if rules.scope == Scope.TEAM:
        entries = _team_entries(session, rules, people, aggs)
    else:
        entries = _partner_entries(rules, people, aggs)
    ranked = [e for e in entries if e.eligible and e.kind != "member"]
    _rank(ranked)
    _award(rules, ranked)
    return entries


def _own_line(kind: str, contest: _Rules, pid: int, team_id: int | None, joined_on: date | None,
              agg: _Agg) -> tuple[Entry, dict[str, Any] | None]:
    """A partner's own line (`kind` partner, or member of a team), and the first rule it breaks of
    those every such line must meet: the tenure, then (attainment) having a target."""
    metric = contest.metric
    entry = Entry(kind, pid, team_id, score=_score(metric, agg), reached_at=agg.reached.get(metric),
                  revenue_fen=agg.revenue)
    problem = _tenure_problem(contest, joined_on)
    if problem is None and metric == Metric.ATTAINMENT and agg.target is None:
        problem = {"code": "not_eligible.no_target"}
    return entry, problem


def _partner_entries(contest: _Rules, people: list[Participant], aggs: dict[int, _Agg]) -> list[Entry]:
    entries = []
    for pid, team_id, joined_on in people:
        agg = aggs.get(pid) or _Agg()
        entry, problem = _own_line("partner", contest, pid, team_id, joined_on, agg)
        if problem is None:
            problem = _ratings_problem(contest, agg.ratings_n)
        if problem is None:
            problem = _threshold_problem(contest, entry.score, agg.ratings_sum, agg.ratings_n)
        if problem is not None:
            entry.eligible, entry.reason = False, problem
        entries.append(entry)
    return entries


def _team_entries(session: Session, contest: _Rules, people: list[Participant], aggs: dict[int, _Agg]) -> list[Entry]:
    """Team score = sum or average of the counted members' scores.

    A member counts when they meet the tenure rule (and, for attainment, have a target). For
    attainment a team's sum is its revenue against its targets; for satisfaction, all its ratings.
    """
    members: dict[int, list[Entry]] = defaultdict(list)
    counted: dict[int, list[_Agg]] = defaultdict(list)
    for pid, team_id, joined_on in people:
        if team_id is None:
            continue
        agg = aggs.get(pid) or _Agg()
        member, problem = _own_line("member", contest, pid, team_id, joined_on, agg)
        if problem is None and contest.team_score == "avg":  # each member's own average is one voice
            problem = _ratings_problem(contest, agg.ratings_n)
        if problem is not None:
            member.eligible, member.reason = False, problem
        else:
            counted[team_id].append(agg)
        members[team_id].append(member)
    entries: list[Entry] = []
    for team_id, team_members in members.items():
        team_aggs = counted.get(team_id, [])
        team_counted = [m for m in team_members if m.eligible]
        entry = Entry("team", None, team_id, revenue_fen=sum(m.revenue_fen or 0 for m in team_members))
        if not team_counted:
            entry.eligible, entry.reason = False, {"code": "not_eligible.no_members"}
        else:
            entry.score = _team_score(contest, team_counted, team_aggs)
            times = [m.reached_at for m in team_counted if m.reached_at is not None]
            entry.reached_at = max(times) if times else None
            problem = _ratings_problem(contest, sum(a.ratings_n for a in team_aggs)) or _threshold_problem(
                contest, entry.score, sum(a.ratings_sum for a in team_aggs), sum(a.ratings_n for a in team_aggs))
            if problem is not None:
                entry.eligible, entry.reason = False, problem
        entries.append(entry)
        entries.extend(team_members)
    return entries


def _team_score(contest: _Rules, counted: list[Entry], aggs: list[_Agg]) -> int:
    if contest.team_score == "avg":
        return ratio_hundredths(sum(m.score for m in counted), len(counted) * 100)
    if contest.metric == Metric.ATTAINMENT:
        return ratio_hundredths(sum(a.revenue for a in aggs), sum(a.target or 0 for a in aggs), 100)
    if contest.metric == Metric.SATISFACTION:
        return ratio_hundredths(sum(a.ratings_sum for a in aggs), sum(a.ratings_n for a in aggs))
    return sum(m.score for m in counted)


_NEVER = datetime.max


def _rank(entries: list[Entry]) -> None:
    """Positions 1..n and competition ranks by the tie rule (see the module docstring)."""
    entries.sort(key=lambda e: (-e.score, (e.reached_at or _NEVER).replace(tzinfo=None),
                                e.team_id or 0, e.partner_id or 0))
    previous: tuple[Any, ...] | None = None
    rank = 0
    for position, entry in enumerate(entries, start=1):
        key = (entry.score, entry.reached_at)
        if key != previous:
            rank = position
            previous = key
        entry.position, entry.rank = position, rank


def _award(contest: _Rules, ranked: list[Entry]) -> None:
    for entry in ranked:
        if entry.score <= 0:
            entry.reason = {"code": "ranked.no_activity", "rank": entry.rank}
            continue
        rank_points = prize_for_rank(contest.prizes, entry.rank)
        tier = tier_for(contest.tiers, entry.score)
        tier_points = int(tier["points"]) if tier else 0
        entry.tier = tier["name"] if tier else None
        entry.rebate_pct = tier.get("rebate_pct") if tier else None
        entry.prize_points = rank_points + tier_points
        entry.reason = {"code": "ranked", "rank": entry.rank, "rank_points": rank_points,
                        "tier": entry.tier, "tier_threshold": tier["threshold"] if tier else None,
                        "tier_points": tier_points, "rebate_pct": entry.rebate_pct}


# --- the live cache ----------------------------------------------------------------------------


def refresh(session: Session, contest_id: int, sums: dict[int, Sums] | None = None) -> Contest:
    """Rebuild the cached standings of one open contest from the ledger (with `sums`: its period's
    sums kept by the sales import of this transaction, `models.tallies`).

    The contest row is locked first so two processes refreshing at once take turns.
    """
    contest: Contest = session.execute(select(Contest).where(col(Contest.id) == contest_id)
                                       .with_for_update()).scalar_one()
    entries = compute(session, contest, sums)
    rows = [e.as_row(contest_id) for e in entries]
    conn = session.connection()
    # While a large import's index builds run (`compute` started them), the lines are converted for
    # the insert that then replaces most of them: Python's work beside SQLite's.
    bound = bind_rows(conn.dialect, _LINE_T, rows) if builds_running(conn) else None
    finish_builds(conn)
    _write_lines(session, contest_id, rows, bound)
    session.execute(update(Contest).where(col(Contest.id) == contest_id)
                    .values(standings_dirty=False, standings_at=utcnow()))
    session.flush()
    session.refresh(contest)
    return contest


_LINE_T = table_of(Standing)
_LINE_VALUES = [c.name for c in _LINE_T.c if c.name not in ("id", "contest_id")]
_UPDATE_LINE = (update(_LINE_T).where(_LINE_T.c.id == bindparam("line_id"))
                .values({name: bindparam(f"new_{name}") for name in _LINE_VALUES}))
_DELETE_LINE = delete(_LINE_T).where(_LINE_T.c.id == bindparam("line_id"))


def _write_lines(session: Session, contest_id: int, rows: list[dict[str, Any]],
                 bound: list[tuple[str, list[Any]]] | None = None) -> None:
    """Make the contest's cached lines `rows` (`Entry.as_row`), writing only what differs.

    A line is its (kind, partner, team); one whose values are all the same as computed is left
    alone, one that differs is updated in place, the others inserted or deleted. When more than
    half of the lines would change (a first build, or a file that moved most places), the lines
    are deleted and inserted again instead (`insert_rows`: cheaper than that many updates). A
    file touching a few partners moves only the places between their old and new ones. `bound`:
    `rows` as `models.db.bind_rows` converted them already, for that insert."""
    t = _LINE_T
    if session.execute(select(t.c.id).where(t.c.contest_id == contest_id).limit(1)).first() is None:
        _replace_lines(session, contest_id, rows, False, bound)
        return
    old = {(line.kind, line.partner_id, line.team_id): line for line in session.execute(
        select(t.c.id, *(t.c[name] for name in _LINE_VALUES)).where(t.c.contest_id == contest_id))}
    changed: list[dict[str, Any]] = []
    new: list[dict[str, Any]] = []
    for row in rows:
        line = old.pop((row["kind"], row["partner_id"], row["team_id"]), None)
        if line is None:
            new.append(row)
        elif any(getattr(line, name) != row[name] for name in _LINE_VALUES):
            changed.append({"line_id": line.id, **{f"new_{name}": row[name] for name in _LINE_VALUES}})
    if 2 * (len(changed) + len(new) + len(old)) > len(rows):
        _replace_lines(session, contest_id, rows, True, bound)
        return
    if old:
        session.execute(_DELETE_LINE, [{"line_id": line.id} for line in old.values()])
    if changed:
        session.execute(_UPDATE_LINE, changed)
    if new:
        insert_rows(session, t, new)


def _replace_lines(session: Session, contest_id: int, rows: list[dict[str, Any]], existing: bool,
                   bound: list[tuple[str, list[Any]]] | None = None) -> None:
    """The contest's lines deleted (if `existing`) and `rows` inserted; on SQLite, when they are most
    of the table's lines, with its indexes built after the insert (`models.indexes.indexes_deferred`:
    100,000 lines 0.81-0.87 s with five indexes kept, 0.57 s built)."""
    t = _LINE_T
    conn = session.connection()
    others = conn.execute(select(func.count()).select_from(t).where(t.c.contest_id != contest_id)).scalar_one()
    with indexes_deferred(conn, t, len(rows), others):
        if existing:
            session.execute(delete(Standing).where(col(Standing.contest_id) == contest_id))
        insert_rows(session, t, rows, bound)


def table_for(contest: AnyContest | StandingsState) -> type[Standing] | type[ContestResult]:
    """Frozen results for a closed contest, the live cache otherwise."""
    return ContestResult if contest.closed_at is not None else Standing


def ensure_fresh(session: Session, contest: AnyContest) -> bool:
    """Rebuild the cache if imports changed the data since it was built (open contests only).

    Returns whether it rebuilt (the contest row was then reloaded in place)."""
    if contest.closed_at is None and contest.standings_dirty:
        refresh(session, contest.id)
        return True
    return False


def primary_kind(contest: AnyContest) -> str:
    return "team" if contest.scope == Scope.TEAM else "partner"


def top(session: Session, contest: AnyContest, n: int) -> list[Standing | ContestResult]:
    """The public board: ranked lines with a score, rank 1..n in position order.

    A tie at the boundary keeps everyone who shares the n-th rank on the board (capped at 2n
    lines); a zero score is never on a board.
    """
    table = table_for(contest)
    stmt = (select(table).where(col(table.contest_id) == contest.id, col(table.kind) == primary_kind(contest),
                                col(table.rank).is_not(None), col(table.rank) <= n, col(table.score) > 0,
                                col(table.position) <= 2 * n)  # lets the index stop early
            .order_by(col(table.position)).limit(2 * n))
    return list(session.execute(stmt).scalars())


# The questions of every /rank, built once (constructing a SQLAlchemy statement costs more than
# running it against the index) and answered as plain rows with the table's column names
# (`models.db.read`): nothing here changes a line, so no ORM object is built.
_TABLES = {Standing: table_of(Standing), ContestResult: table_of(ContestResult)}
_OWN_LINE = {model: select(t).where(t.c.contest_id == bindparam("contest"), t.c.kind == bindparam("kind"),
                                    t.c.partner_id == bindparam("partner")).limit(1)
             for model, t in _TABLES.items()}
_TEAM_LINE = {model: select(t).where(t.c.contest_id == bindparam("contest"), t.c.kind == "team",
                                     t.c.team_id == bindparam("team")).limit(1)
              for model, t in _TABLES.items()}
# The lowest score above this one, then the last position holding it: two probes of the score
# index (contest, kind, score, position) — MIN(score) above, then that score's highest position —
# so a partner among 14,000 tied at zero costs one probe, not a walk through the tie, and
# PostgreSQL never sorts the lines above (ORDER BY score, position DESC is not an index order).


def _lowest_above(t: Any, contest: Any, kind: Any, score: Any) -> Any:
    """The lowest ranked score above `score` among `t`'s lines, as a scalar subquery (`contest`,
    `kind`, `score`: values or columns of an outer query)."""
    above = t.alias()
    return (select(above.c.score).where(above.c.contest_id == contest, above.c.kind == kind,
                                        above.c.position.is_not(None), above.c.score > score)
            .order_by(above.c.score).limit(1)  # the index's own order: PostgreSQL stops at the first
            .correlate_except(above).scalar_subquery())  # nested twice in `_place`: correlate to the outermost


def _next_above(t: Any, contest: Any, kind: Any, score: Any, *columns: Any) -> Any:
    """The next place up (`columns` of it, else the whole line) among `t`'s lines, `t` an alias
    when the arguments are columns of an outer query: the last position holding the lowest score
    above `score`."""
    return (select(*(columns or (t,))).where(t.c.contest_id == contest, t.c.kind == kind, t.c.position.is_not(None),
                                            t.c.score == _lowest_above(t, contest, kind, score))
            .order_by(t.c.position.desc()).limit(1))


_NEXT_ABOVE = {model: _next_above(t, bindparam("contest"), bindparam("kind"), bindparam("score"))
               for model, t in _TABLES.items()}


_PLACE_COLUMNS = ("kind", "partner_id", "team_id", "score", "eligible", "reason", "rank", "position", "tier",
                  "prize_points", "rebate_pct")
_STATE_COLUMNS = ("id", "scope", "standings_at", "standings_dirty", "closed_at", "top_n", "tiers")


def _place(t: Any) -> Prepared:
    """The contest's `StandingsState` columns, then the partner's own line (what a reply shows of it,
    their member line in a team contest) with the next place up (`next_above`'s line: its score and
    rank) as two correlated scalar subqueries: one round trip answers "where am I, how far to the
    next" and says whether the lines read are the ones to read (stale, or frozen elsewhere)."""
    c = table_of(Contest)
    above_score = _lowest_above(t, t.c.contest_id, t.c.kind, t.c.score)
    up = t.alias("above")
    above_rank = _next_above(up, t.c.contest_id, t.c.kind, t.c.score, up.c.rank).scalar_subquery()
    own = and_(t.c.contest_id == c.c.id, t.c.partner_id == bindparam("partner"),
               t.c.kind == case((c.c.scope == Scope.TEAM.value, "member"), else_="partner"))
    return Prepared(select(*(c.c[name] for name in _STATE_COLUMNS), *(t.c[name] for name in _PLACE_COLUMNS),
                           above_score, above_rank)
                    .select_from(c.outerjoin(t, own)).where(c.c.id == bindparam("contest")).limit(1))


class Place(NamedTuple):
    """A partner's own line as `place_of_partner` reads it: the columns a reply shows, and the score
    and rank of the next place up (None: nobody is ahead, or the line is not ranked)."""

    kind: str
    partner_id: int | None
    team_id: int | None
    score: int
    eligible: bool
    reason: dict[str, Any]
    rank: int | None
    position: int | None
    tier: str | None
    prize_points: int
    rebate_pct: str | None
    above_score: int | None
    above_rank: int | None


_PLACE = {model: _place(t) for model, t in _TABLES.items()}
_CONTEST_T = table_of(Contest)
_STATE = Prepared(select(*(_CONTEST_T.c[name] for name in _STATE_COLUMNS))
                  .where(_CONTEST_T.c.id == bindparam("contest")))


class StandingsState(NamedTuple):
    """What a question about a contest's standings needs of the contest, read by its primary key:
    which lines to read (`scope`, `closed_at`: live or frozen), whether they are current — the
    standings' version is `standings_at`, which `refresh` sets on every rebuild in whichever
    process, and `standings_dirty` says an import has made them stale since — how long its public
    board is and its tiers (the gap to the next one)."""

    id: int
    scope: str
    standings_at: datetime | None
    standings_dirty: bool
    closed_at: datetime | None
    top_n: int
    tiers: list[dict[str, Any]]

    @property
    def stale(self) -> bool:
        """An open contest's standings need a rebuild before they are shown (`ensure_fresh`)."""
        return self.closed_at is None and self.standings_dirty


def standings_state(session: Session, *, contest_id: int) -> StandingsState | None:
    """The contest's `StandingsState` (None: no such contest): one prebuilt statement on the primary
    key, seven columns as plain values, no ORM object — the cheap check before a cached board is
    served or a partner's place is read."""
    rows = _STATE.rows(session, {"contest": contest_id})
    return _state(rows[0]) if rows else None


def _read_state(row: tuple[Any, ...]) -> StandingsState:
    ident, scope, built, dirty, closed, top_n, tiers = row
    return StandingsState(int(ident), str(scope), None if built is None else read_datetime(built), bool(dirty),
                          None if closed is None else read_datetime(closed), int(top_n), list(read_json(tiers) or []))


_state = ByRawRow(_read_state)
"""A contest's `StandingsState` from its raw row, converted once (`models.plain.ByRawRow`): a
rebuild's new `standings_at`, an import's `standings_dirty`, an edit of the tiers each give another
key; nobody changes the tiers it holds."""


def line_of_partner(session: Session, contest: AnyContest, partner_id: int) -> Row[Any] | None:
    """A partner's own line: their partner line, or their member line in a team contest."""
    kind = "member" if contest.scope == Scope.TEAM else "partner"
    params = {"contest": contest.id, "kind": kind, "partner": partner_id}
    return read(session, _OWN_LINE[table_for(contest)], params).first()


def _place_row(session: Session, model: type[Standing] | type[ContestResult], contest_id: int,
               partner_id: int) -> tuple[StandingsState, Place | None] | None:
    rows = _PLACE[model].rows(session, {"contest": contest_id, "partner": partner_id})
    if not rows:
        return None
    row = rows[0]
    state = _state(row[:len(_STATE_COLUMNS)])
    (kind, pid, tid, score, eligible, reason, rank, position, tier, prize_points, rebate_pct, above_score,
     above_rank) = row[len(_STATE_COLUMNS):]
    if kind is None:
        return state, None
    ranked = position is not None and above_score is not None
    return state, Place(kind, pid, tid, int(score), bool(eligible), read_json(reason) or {}, rank, position, tier,
                        int(prize_points), rebate_pct, int(above_score) if ranked else None,
                        above_rank if ranked else None)


def place_of_partner(session: Session, contest: AnyContest | StandingsState, partner_id: int) -> Place | None:
    """`line_of_partner` (the columns a reply shows) with the next place up in the same row — the
    score and rank of `next_above`'s line — in one statement through the driver (`Prepared`)."""
    found = _place_row(session, table_for(contest), contest.id, partner_id)
    return found[1] if found is not None else None


def place_in(session: Session, *, contest_id: int, partner_id: int) -> tuple[StandingsState, Place | None] | None:
    """The contest's standings state and the partner's `Place` in it, knowing only the contest's id
    (None: no such contest): one statement for an open contest with current standings; a frozen
    contest's results, or standings an import made stale (rebuilt first), cost a second read."""
    found = _place_row(session, Standing, contest_id, partner_id)
    if found is None:
        return None
    state = found[0]
    if state.closed_at is not None:
        return _place_row(session, ContestResult, contest_id, partner_id)
    if state.stale:
        refresh(session, contest_id)
        return _place_row(session, Standing, contest_id, partner_id)
    return found


def line_of_team(session: Session, contest: AnyContest, team_id: int) -> Row[Any] | None:
    return read(session, _TEAM_LINE[table_for(contest)], {"contest": contest.id, "team": team_id}).first()


def members_of(session: Session, contest: AnyContest, team_id: int) -> list[Standing | ContestResult]:
    """A team's member lines, best score first. Sorted here, not in SQL: with ORDER BY score, SQLite
    walks the score index through every member of the contest (0.4 s at 100,000) instead of
    probing the team's few lines."""
    table = table_for(contest)
    stmt = select(table).where(col(table.contest_id) == contest.id, col(table.kind) == "member",
                               col(table.team_id) == team_id)
    return sorted(session.execute(stmt).scalars(), key=lambda line: (-line.score, line.id))


def next_above(session: Session, contest: AnyContest, line: Any) -> Row[Any] | None:
    """The nearest line ahead with a strictly higher score (the next place to take); `line` is a row
    or an ORM line."""
    if line.position is None:
        return None
    params = {"contest": contest.id, "kind": line.kind, "score": line.score}
    return read(session, _NEXT_ABOVE[table_for(contest)], params).first()


def all_lines(session: Session, contest: AnyContest) -> list[Standing | ContestResult]:
    """Every line: ranked ones by position, then the ineligible ones by score."""
    table = table_for(contest)
    stmt = (select(table).where(col(table.contest_id) == contest.id)
            .order_by(col(table.kind), col(table.position).is_(None), col(table.position), col(table.score).desc(),
                      col(table.id)))
    return list(session.execute(stmt).scalars())


def public_top_ids(session: Session, contest: AnyContest, limit: int = 10) -> set[int]:
    """Partner ids on the public board of an individual contest (cached standings)."""
    if contest.closed_at is not None:
        return set()
    return {line.partner_id for line in top(session, contest, min(contest.top_n, limit)) if line.partner_id is not None}


def refresh_tracking(session: Session, contest_id: int, sums: dict[int, Sums] | None = None) -> list[int]:
    """Rebuild the cache (`refresh`) and return the partners who fell off the public board by it."""
    contest = session.get(Contest, contest_id)
    if contest is None or contest.closed_at is not None:
        return []
    before = public_top_ids(session, contest) if contest.scope == Scope.INDIVIDUAL and contest.standings_at else set()
    contest = refresh(session, contest_id, sums)
    after = public_top_ids(session, contest) if contest.scope == Scope.INDIVIDUAL else set()
    return sorted(before - after)


def mark_open_contests_dirty(session: Session, start: datetime | None = None,
                             end: datetime | None = None) -> None:
    """Invalidate the live standings of open contests (those whose period touches [start, end])."""
    stmt = update(Contest).where(col(Contest.closed_at).is_(None))
    if start is not None and end is not None:
        stmt = stmt.where(col(Contest.start_at) <= end, col(Contest.end_at) > start)
    session.execute(stmt.values(standings_dirty=True))


def stale_contest_ids(session: Session) -> list[int]:
    """Open contests whose live standings an import has invalidated (`mark_open_contests_dirty`);
    a cancelled contest is never rebuilt."""
    return list(session.execute(select(col(Contest.id)).where(
        col(Contest.closed_at).is_(None), col(Contest.cancelled_at).is_(None),
        col(Contest.standings_dirty).is_(True))).scalars())


def ranked_count(session: Session, *, contest: AnyContest) -> int:
    """How many lines are ranked. Positions run 1..n over the ranked lines, so the largest is their
    count: one index probe instead of counting 100,000 rows on every /rank."""
    table = table_for(contest)
    return int(session.execute(select(func.max(col(table.position))).where(
        col(table.contest_id) == contest.id, col(table.kind) == primary_kind(contest))).scalar_one() or 0)


def partner_lines(session: Session, *, contest: AnyContest, partner_ids: list[int]) -> list[Standing | ContestResult]:
    """The individual lines of these partners, best score first (sorted here: see `members_of`)."""
    table = table_for(contest)
    lines = session.execute(select(table).where(col(table.contest_id) == contest.id, col(table.kind) == "partner",
                                                col(table.partner_id).in_(partner_ids))).scalars()
    return sorted(lines, key=lambda line: (-line.score, line.id))


def tier_counts(session: Session, *, contest: AnyContest) -> dict[str, int]:
    """How many ranked lines of the contest's own kind (partners, or teams in a team contest) reached
    each tier, live or frozen (`table_for`): one GROUP BY over the contest's lines."""
    table = table_for(contest)
    rows = session.execute(select(col(table.tier), func.count()).where(
        col(table.contest_id) == contest.id, col(table.kind) == primary_kind(contest),
        col(table.tier).is_not(None)).group_by(col(table.tier)))
    return {str(tier): int(n) for tier, n in rows}


def line_count(session: Session, *, contest: AnyContest, kind: str) -> int:
    """How many lines of `kind` the contest's standings (or results) hold: its participants when
    `kind` is `partner` (individual) or `member` (a team contest's partners), its teams for `team`."""
    table = table_for(contest)
    return int(session.execute(select(func.count()).select_from(table).where(
        col(table.contest_id) == contest.id, col(table.kind) == kind)).scalar_one())


# --- the console's board (`bot.console.contests`) --------------------------------------------------


@dataclass(frozen=True)
class ParticipantFigures:
    """Who a contest's rules take in now: the segment's active partners (a team contest: those with a
    team), how many of them meet the tenure rule at the start, how many lack a target (attainment),
    and how many teams take part."""

    in_segment: int
    meet_tenure: int
    lacking_target: int
    teams: int


def participant_figures(session: Session, *, contest: Contest) -> ParticipantFigures:
    """Counted in SQL (`_participants`, the same query the standings use); `contest` may be a spec
    not stored yet (an unsaved `Contest`)."""
    stmt = _participants(contest, func.count(), func.count(func.distinct(col(Partner.team_id))))
    if contest.scope == Scope.TEAM:
        stmt = stmt.where(col(Partner.team_id).is_not(None))
    total, teams = session.execute(stmt).one()
    meet = int(total)
    if contest.min_tenure_days:
        start_day = as_utc(contest.start_at).astimezone(zone(contest.timezone)).date()
        latest = start_day - timedelta(days=contest.min_tenure_days)
        tenure = _participants(contest, func.count()).where(col(Partner.joined_on).is_not(None),
                                                             col(Partner.joined_on) <= latest)
        if contest.scope == Scope.TEAM:
            tenure = tenure.where(col(Partner.team_id).is_not(None))
        meet = int(session.execute(tenure).scalar_one())
    return ParticipantFigures(int(total), meet, lacking_target_count(session, contest=contest),
                              int(teams) if contest.scope == Scope.TEAM else 0)


@dataclass(frozen=True)
class LineFilter:
    """The console board's filters: a team (its code) and the partners' segment attributes."""

    team: str | None = None
    region: str | None = None
    city_tier: int | None = None
    industry: str | None = None
    size: str | None = None

    @property
    def any(self) -> bool:
        return self.team is not None or self.by_partner

    @property
    def by_partner(self) -> bool:
        """Whether a filter needs the partners' own attributes (a join)."""
        return any(value is not None for value in (self.region, self.city_tier, self.industry, self.size))


def lines_page(session: Session, *, contest: AnyContest, kind: str, offset: int, limit: int,
               chosen: LineFilter | None = None) -> tuple[list[Row[Any]], int]:
    """One page of a contest's lines of `kind` (every participant, live or frozen), ranked ones by
    position then the others by score, with each partner's code and name and the team's; and how
    many lines the filter selects in all.

    Paged in SQL: without a filter the ranked lines of a page are a range of positions (1..n have
    no gaps), read by the position index however deep the page; with a filter, OFFSET over the
    same index. Rows carry the line's columns and `code`, `name`, `team_code`, `team_name`.
    """
    chosen = chosen or LineFilter()
    line = table_of(table_for(contest))
    p, tm = table_of(Partner), table_of(Team)
    joined = line.outerjoin(p, p.c.id == line.c.partner_id).outerjoin(tm, tm.c.id == line.c.team_id)
    where = [line.c.contest_id == contest.id, line.c.kind == kind]
    if chosen.team is not None:  # by the line's own team id: no join needed to count
        where.append(line.c.team_id == select(tm.c.id).where(tm.c.code == chosen.team).scalar_subquery())
    if chosen.region is not None:
        where.append(p.c.region == chosen.region)
    if chosen.city_tier is not None:
        where.append(p.c.city_tier == chosen.city_tier)
    if chosen.industry is not None:
        where.append(p.c.industry == chosen.industry)
    if chosen.size is not None:
        where.append(p.c.size == chosen.size)
    counted = line.join(p, p.c.id == line.c.partner_id) if chosen.by_partner else line
    columns: list[Any] = [line, p.c.code.label("code"), p.c.name.label("name"), tm.c.code.label("team_code"),
                          tm.c.name.label("team_name")]

    def count(*more: Any) -> int:
        return int(session.execute(select(func.count()).select_from(counted).where(*where, *more)).scalar_one())

    if chosen.any:
        ranked = count(line.c.position.is_not(None))
    else:
        ranked = int(session.execute(select(func.max(line.c.position)).where(*where)).scalar_one() or 0)
    unranked = count(line.c.position.is_(None))
    rows: list[Row[Any]] = []
    if offset < ranked:
        stmt = select(*columns).select_from(joined).where(*where, line.c.position.is_not(None))
        if chosen.any:
            stmt = stmt.order_by(line.c.position).offset(offset).limit(limit)
        else:
            stmt = stmt.where(line.c.position > offset, line.c.position <= offset + limit).order_by(line.c.position)
        rows = list(session.execute(stmt).all())
    if len(rows) < limit and unranked:
        skip = max(0, offset - ranked)
        stmt = (select(*columns).select_from(joined).where(*where, line.c.position.is_(None))
                .order_by(line.c.score.desc(), line.c.id).offset(skip).limit(limit - len(rows)))
        rows += list(session.execute(stmt).all())
    return rows, ranked + unranked


def lines_above(session: Session, *, contest: AnyContest, kind: str, positions: list[int]) -> dict[int, Row[Any]]:
    """The line just ahead of each of these positions (position - 1), by position: what the tie
    rule compared each line with."""
    wanted = sorted({pos - 1 for pos in positions if pos > 1})
    if not wanted:
        return {}
    line = table_of(table_for(contest))
    rows = session.execute(select(line.c.position, line.c.score, line.c.reached_at, line.c.rank).where(
        line.c.contest_id == contest.id, line.c.kind == kind, line.c.position.in_(wanted))).all()
    return {int(row.position) + 1: row for row in rows}


def order_note(line: Any, above: Any | None) -> dict[str, Any]:
    """Why a ranked line stands below the one ahead of it, by the tie rule (`_rank`): a lower score
    (`behind`, by how much), the same score reached later (`later`, both times), or the same score
    at the same moment (`shared`: the same rank). The first line has none (`first`)."""
    if line.position is None:
        return {"code": "unranked"}
    if above is None:
        return {"code": "first"}
    if above.score > line.score:
        return {"code": "behind", "gap": above.score - line.score}
    if above.reached_at == line.reached_at:
        return {"code": "shared", "rank": line.rank}
    return {"code": "later", "above_at": _utc(above.reached_at), "own_at": _utc(line.reached_at)}


def tier_counts_by_score(session: Session, *, contest: AnyContest) -> dict[str, int]:
    """`tier_counts` by a few index probes instead of a GROUP BY over every line.

    A ranked line's tier is the highest whose threshold its score reaches, and a zero score has
    none (`_award`); ranked lines hold positions 1..n in falling score. So the lines at or above a
    threshold are the positions 1..P, P being the last position with a score at or above it (one
    probe of the score index), and a tier's count is the difference of two such P. The same answer
    as `tier_counts` (tested), for the pages read often (the console's board, the meeting-room board).
    """
    line = table_of(table_for(contest))
    kind = primary_kind(contest)

    def last_position(threshold: int) -> int:
        found = session.execute(select(line.c.position).where(
            line.c.contest_id == contest.id, line.c.kind == kind, line.c.position.is_not(None),
            line.c.score >= max(threshold, 1)).order_by(line.c.score, line.c.position.desc()).limit(1)).scalar()
        return int(found or 0)

    tiers = sorted(contest.tiers, key=lambda tier: tier["threshold"])
    reach = [last_position(int(tier["threshold"])) for tier in tiers] + [0]
    return {str(tier["name"]): reach[i] - reach[i + 1] for i, tier in enumerate(tiers) if reach[i] - reach[i + 1]}


def team_race(session: Session, *, contest: AnyContest, limit: int = 100) -> list[Row[Any]]:
    """A team contest's teams in order (ranked first), with their codes and names."""
    rows, _total = lines_page(session, contest=contest, kind="team", offset=0, limit=limit)
    return rows
