"""Contests: creation, status, closing (freeze results, write points) and recurrence."""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import (
    DateTime,
    Integer,
    String,
    and_,
    bindparam,
    cast,
    delete,
    func,
    insert,
    literal,
    null,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import aliased
from sqlmodel import Session, col

from models import plain, standings
from models.db import Prepared, begin_unchecked, json_object, read, rowcount, table_of
from models.errors import DataError
from models.rows import ContestRow
from models.rules import METRICS, RECURRENCES, SCOPES, TEAM_SCORES, next_period
from models.rules import status as status  # where it lives: light, for `models.plain`'s readers
from models.tables import Contest, ContestResult, Partner, PointsEntry, Sale, Standing, Team
from models.values import as_utc, normal_code, utcnow, zone


@dataclass
class ContestSpec:
    name: str
    metric: str
    start_at: datetime
    end_at: datetime
    scope: str = "individual"
    team_score: str = "sum"
    timezone: str = "Asia/Shanghai"
    grace_seconds: int = 0
    segment: dict[str, Any] | None = None
    min_tenure_days: int | None = None
    min_score: int | None = None
    min_satisfaction: int | None = None
    prizes: list[dict[str, Any]] | None = None
    tiers: list[dict[str, Any]] | None = None
    top_n: int = 10
    recur: str = "none"
    min_ratings: int = 3
    featured: bool = False


def create(session: Session, spec: ContestSpec, now: datetime | None = None) -> Contest:
    """Validate a contest and store it."""
    validate(spec)
    contest = Contest(
        name=spec.name.strip(), metric=spec.metric, scope=spec.scope, team_score=spec.team_score,
        start_at=as_utc(spec.start_at), end_at=as_utc(spec.end_at), timezone=spec.timezone,
        grace_seconds=spec.grace_seconds, segment=spec.segment or {}, min_tenure_days=spec.min_tenure_days,
        min_score=spec.min_score, min_satisfaction=spec.min_satisfaction, prizes=spec.prizes or [],
        tiers=spec.tiers or [], top_n=spec.top_n, recur=spec.recur, min_ratings=spec.min_ratings,
        featured=spec.featured, created_at=now or utcnow(), standings_dirty=True,
    )
    session.add(contest)
    session.flush()
    return contest


def validate(spec: ContestSpec) -> None:
    """The rules every contest keeps, at creation and after each edit (`models.contest_changes`)."""
    if not spec.name.strip() or len(spec.name) > 200:
        raise DataError("error.bad_name")
    if spec.metric not in METRICS:
        raise DataError("error.bad_choice", option="metric", value=spec.metric, choices=", ".join(METRICS))
    if spec.scope not in SCOPES:
        raise DataError("error.bad_choice", option="scope", value=spec.scope, choices=", ".join(SCOPES))
    if spec.team_score not in TEAM_SCORES:
        raise DataError("error.bad_choice", option="team-score", value=spec.team_score,
                        choices=", ".join(TEAM_SCORES))
    if spec.recur not in RECURRENCES:
        raise DataError("error.bad_choice", option="recur", value=spec.recur, choices=", ".join(RECURRENCES))
    if spec.end_at <= spec.start_at:
        raise DataError("error.period_reversed")
    if spec.top_n < 1 or spec.top_n > 100:
        raise DataError("error.bad_top")
    if spec.min_satisfaction is not None and not 100 <= spec.min_satisfaction <= 500:
        raise DataError("error.bad_min_satisfaction")
    if spec.min_tenure_days is not None and spec.min_tenure_days < 0:
        raise DataError("error.bad_number", value=str(spec.min_tenure_days))
    if not 1 <= spec.min_ratings <= 10_000:
        raise DataError("error.bad_min_ratings", value=spec.min_ratings)
    if spec.grace_seconds < 0:
        raise DataError("error.bad_number", value=str(spec.grace_seconds))
    zone(spec.timezone)


def settles_at(contest: Contest) -> datetime:
    """When the period plus the settlement grace for late data has passed."""
    return as_utc(contest.end_at) + timedelta(seconds=contest.grace_seconds)


def _period_sales(contest_id: int) -> Any:
    """The number of sales in a contest's period, as a subquery of the contest's own row."""
    c = table_of(Contest).c
    return (select(func.count()).select_from(Sale)
            .where(col(Sale.occurred_at) >= c.start_at, col(Sale.occurred_at) < c.end_at, c.id == contest_id)
            .scalar_subquery())


def late_sales(session: Session, contest: Contest) -> int:
    """Sales for the period imported after it closed: stored, but not in the frozen results.

    Counted against what the close saw (`sales_at_close`; the ledger is append-only), not
    against `closed_at`: a close back-dated with `--now` has seen every sale imported before it
    ran, whatever their `imported_at`. Contests closed before the count was kept fall back to
    the sales imported after `closed_at`.
    """
    if contest.closed_at is None:
        return 0
    if contest.sales_at_close is not None:
        now_stored = int(session.execute(select(_period_sales(contest.id))).scalar_one())
        return max(0, now_stored - contest.sales_at_close)
    stmt = select(func.count()).select_from(Sale).where(
        col(Sale.occurred_at) >= contest.start_at, col(Sale.occurred_at) < contest.end_at,
        col(Sale.imported_at) > contest.closed_at)
    return int(session.execute(stmt).scalar_one())


@dataclass
class Closed:
    contest: Contest
    results: int
    points_entries: int
    next_contest: Contest | None


def close(session: Session, contest_id: int, now: datetime | None = None) -> Closed | None:
    """Freeze a contest's results and award its points, once.

    The conditional UPDATE is the claim: of two processes closing at once, one flips
    `closed_at` and does the work in the same transaction; the other (blocked on the row lock on
    PostgreSQL, or on the write lock on SQLite) updates nothing and returns None. The unique
    `source_key` of every ledger entry is a second guard against double points.
    """
    now = now or utcnow()
    # SQLite: the write lock first, and no foreign-key checks (every key written is copied from
    # rows that hold it: results from the standings, prizes from the results); a close's last
    # step can then drop the cache by truncating it (`_drop_standings`).
    begin_unchecked(session.connection())
    claimed = session.execute(
        update(Contest).where(col(Contest.id) == contest_id, col(Contest.closed_at).is_(None),
                              col(Contest.cancelled_at).is_(None))
        .values(closed_at=now))
    if rowcount(claimed) != 1:
        return None
    contest = session.execute(select(Contest).where(col(Contest.id) == contest_id)).scalar_one()
    session.refresh(contest)
    if contest.standings_dirty or contest.standings_at is None:
        contest = standings.refresh(session, contest_id)  # the cache is rebuilt from the ledger first
    # What the results are made of: sales imported from now on are late (on SQLite no import can
    # commit in between, the claim above holds the write lock).
    session.execute(update(Contest).where(col(Contest.id) == contest_id)
                    .values(sales_at_close=_period_sales(contest_id)))
    results = _freeze(session, contest_id)
    paid = _prize_entries(session, contest, now)
    _drop_standings(session, contest_id)  # frozen now: the cache goes
    follow_up = _roll(session, contest, now)
    session.flush()
    return Closed(contest, results, paid, follow_up)


_LINE_COLUMNS = ("contest_id", "kind", "partner_id", "team_id", "score", "reached_at", "eligible", "reason", "rank",
                 "position", "tier", "prize_points", "rebate_pct", "revenue_fen")


def _freeze(session: Session, contest_id: int) -> int:
    """Copy the fresh standings into the frozen results inside the database (no round trip per line)."""
    source = (select(*(table_of(Standing).c[name] for name in _LINE_COLUMNS))
              .where(col(Standing.contest_id) == contest_id))
    session.execute(insert(table_of(ContestResult)).from_select(list(_LINE_COLUMNS), source))
    # (rowcount of INSERT … SELECT is -1 with psycopg: count what was frozen)
    return int(session.execute(select(func.count()).select_from(ContestResult)
                               .where(col(ContestResult.contest_id) == contest_id)).scalar_one())


def _drop_standings(session: Session, contest_id: int) -> None:
    """Delete a contest's live standings. When they are all the cache holds (one open contest: the
    usual case; two index probes tell), by a DELETE without WHERE, which SQLite runs without
    foreign-key checks (`begin_unchecked`) by freeing the table's pages at once — its truncate
    optimization: 0.1 s instead of 1 s for 100,000 lines taken out of six indexes."""
    ids = session.execute(select(func.min(col(Standing.contest_id)), func.max(col(Standing.contest_id)))).one()
    if tuple(ids) == (contest_id, contest_id):
        session.execute(delete(Standing))
    else:
        session.execute(delete(Standing).where(col(Standing.contest_id) == contest_id))


def _prize_entries(session: Session, contest: Contest, now: datetime) -> int:
    """A ledger entry for every prize, written inside the database from the frozen results (no
    round trip per line): a partner line with prize points is paid its own; in a team contest each
    counted (eligible) member of a team with prize points receives the team's prize. Returns how
    many entries were written."""
    line, team = aliased(ContestResult), aliased(ContestResult)
    own = (select(col(line.partner_id), col(line.prize_points), col(line.rank), col(line.tier),
                  cast(null(), Integer).label("team_id"))
           .where(col(line.contest_id) == contest.id, col(line.kind) == "partner", col(line.prize_points) > 0))
    shared = (select(col(line.partner_id), col(team.prize_points), col(team.rank), col(team.tier), col(line.team_id))
              .join(team, and_(col(team.contest_id) == line.contest_id, col(team.kind) == "team",
                               col(team.team_id) == line.team_id))
              .where(col(line.contest_id) == contest.id, col(line.kind) == "member", col(line.eligible).is_(True),
                     col(team.prize_points) > 0))
    written = 0
    for source in (own, shared):
        won = source.subquery()
        rows = select(
            won.c.partner_id, literal("earned"), won.c.prize_points,
            json_object(("code", literal("points.contest_prize")), ("contest_id", literal(contest.id)),
                        ("rank", won.c.rank), ("tier", won.c.tier), ("team_id", won.c.team_id)),
            literal(f"contest:{contest.id}:partner:") + cast(won.c.partner_id, String),
            literal(now, DateTime()))
        count = int(session.execute(select(func.count()).select_from(won)).scalar_one())
        if count:
            session.execute(insert(table_of(PointsEntry)).from_select(
                ["partner_id", "kind", "amount", "reason", "source_key", "created_at"], rows))
        written += count
    return written


def _roll(session: Session, contest: Contest, now: datetime) -> Contest | None:
    """Create the next period of a recurring contest (once: `previous_id` is unique)."""
    if contest.recur == "none":
        return None
    period = next_period(as_utc(contest.start_at), as_utc(contest.end_at), contest.recur, zone(contest.timezone))
    nxt = Contest(
        name=_renamed(contest.name, as_utc(contest.start_at), period.start, zone(contest.timezone)),
        metric=contest.metric, scope=contest.scope, team_score=contest.team_score,
        start_at=period.start, end_at=period.end, timezone=contest.timezone, grace_seconds=contest.grace_seconds,
        segment=contest.segment, min_tenure_days=contest.min_tenure_days, min_score=contest.min_score,
        min_satisfaction=contest.min_satisfaction, prizes=contest.prizes, tiers=contest.tiers,
        top_n=contest.top_n, recur=contest.recur, min_ratings=contest.min_ratings, featured=contest.featured,
        previous_id=contest.id, created_at=now, standings_dirty=True)
    try:
        with session.begin_nested():
            session.add(nxt)
    except IntegrityError:
        return None
    return nxt


def _renamed(name: str, old_start: datetime, new_start: datetime, tz: ZoneInfo) -> str:
    """`11月销售冠军` rolls into `12月销售冠军`; a name without its month or quarter stays as it is."""
    old, new = old_start.astimezone(tz), new_start.astimezone(tz)
    for before, after in ((f"{old.year}年{old.month}月", f"{new.year}年{new.month}月"),
                          (f"{old.month}月", f"{new.month}月"),
                          (f"Q{(old.month - 1) // 3 + 1}", f"Q{(new.month - 1) // 3 + 1}"),
                          (old.strftime("%B"), new.strftime("%B")), (old.strftime("%b"), new.strftime("%b"))):
        if before in name:
            return name.replace(before, after, 1)
    return name


def due(session: Session, now: datetime) -> list[int]:
    """Ids of open contests whose period plus grace has ended by `now` (a cancelled one never closes)."""
    rows = session.execute(select(col(Contest.id), col(Contest.end_at), col(Contest.grace_seconds))
                           .where(col(Contest.closed_at).is_(None), col(Contest.cancelled_at).is_(None),
                                  col(Contest.end_at) <= now)
                           .order_by(col(Contest.end_at), col(Contest.id))).all()
    return [cid for cid, end, grace in rows if as_utc(end) + timedelta(seconds=grace) <= now]


def partner_by_code(session: Session, code: str) -> Partner:
    """The partner of a code as typed: exactly, else in any case and with spaces around (as the imports)."""
    partner: Partner | None = session.execute(select(Partner).where(col(Partner.code) == code)).scalars().first()
    if partner is None:
        typed = select(Partner).where(func.upper(col(Partner.code)) == normal_code(code))
        partner = session.execute(typed).scalars().first()
    if partner is None:
        raise DataError("error.unknown_partner", value=code)
    return partner


# --- what the chat commands read (`handlers.commands`) ------------------------------------------


def honours_of(session: Session, *, partner_id: int, team_id: int | None,
               limit: int = 10) -> list[tuple[Contest, ContestResult]]:
    """A partner's top-3 places in closed contests, alone or with their team, newest first."""
    stmt = (select(Contest, ContestResult).join(ContestResult, col(ContestResult.contest_id) == Contest.id)
            .where(col(ContestResult.rank).is_not(None), col(ContestResult.rank) <= 3, col(ContestResult.score) > 0,
                   ((col(ContestResult.kind) == "partner") & (col(ContestResult.partner_id) == partner_id))
                   | ((col(ContestResult.kind) == "team") & (col(ContestResult.team_id) == team_id)))
            .order_by(col(Contest.end_at).desc()).limit(limit))
    return [(contest, result) for contest, result in session.execute(stmt).all()]


def recently_closed(session: Session, *, limit: int) -> list[Contest]:
    """The contests closed last (by the end of their period)."""
    return list(session.execute(select(Contest).where(col(Contest.closed_at).is_not(None))
                                .order_by(col(Contest.end_at).desc(), col(Contest.id).desc()).limit(limit)).scalars())


def winners(session: Session, *, contest_id: int) -> list[ContestResult]:
    """A closed contest's top-3 partners or teams (not members), as announced, by position."""
    return list(session.execute(select(ContestResult).where(
        col(ContestResult.contest_id) == contest_id, col(ContestResult.kind) != "member",
        col(ContestResult.rank).is_not(None), col(ContestResult.rank) <= 3, col(ContestResult.score) > 0)
        .order_by(col(ContestResult.position))).scalars())


# Built once, read as plain rows (`models.db.read`): every /rank asks them.
_CONTEST = table_of(Contest)
_CONTEST_COLUMNS = [_CONTEST.c[f.name] for f in fields(ContestRow)]
_OPEN_ROWS = (select(*_CONTEST_COLUMNS).where(_CONTEST.c.closed_at.is_(None), _CONTEST.c.cancelled_at.is_(None))
              .order_by(_CONTEST.c.start_at, _CONTEST.c.end_at, _CONTEST.c.id))
_ONE_ROW = select(*_CONTEST_COLUMNS).where(_CONTEST.c.id == bindparam("contest"))


_OPEN = Prepared(_OPEN_ROWS)


def open_contest_rows(session: Session) -> list[ContestRow]:
    """The contests not closed yet, as plain rows, by start, end and id (the measured fast path).

    Every chat question about a contest starts here: run on the driver's cursor (`Prepared`) and
    read by `models.plain`'s converters, which return what the ORM's column types do (a test
    compares them), at half the cost of SQLAlchemy's execution and result processing (py-spy)."""
    return [_contest_of(row) for row in _OPEN.rows(session, {})]


_contest_of = plain.ByRawRow(plain.contest_of)
"""The `ContestRow` of a raw row, converted once (`models.plain.ByRawRow`); nobody changes a
`ContestRow` (frozen) nor the prizes, tiers or segment it holds."""


def contest_row(session: Session, *, contest_id: int) -> ContestRow:
    """One contest as a plain row."""
    return ContestRow(*read(session, _ONE_ROW, {"contest": contest_id}).one())


def contest_by_id(session: Session, *, contest_id: int) -> Contest | None:
    """The contest as an ORM object (from the session's identity map if loaded)."""
    return session.get(Contest, contest_id)


def contest_by_name(session: Session, *, fragment: str) -> Contest | None:
    """The contest whose name contains `fragment` (never a cancelled one): open ones first, then the latest to end."""
    return session.execute(select(Contest).where(col(Contest.name).contains(fragment),
                                                 col(Contest.cancelled_at).is_(None))
                           .order_by(col(Contest.closed_at).is_not(None), col(Contest.end_at).desc())).scalars().first()


def unclosed(session: Session) -> list[Contest]:
    """Every contest not closed yet and not cancelled (ORM objects)."""
    return list(session.execute(select(Contest).where(col(Contest.closed_at).is_(None),
                                                      col(Contest.cancelled_at).is_(None))).scalars())


def all_contests(*, session: Session) -> list[Contest]:
    """Every contest, by start then id (`mianzi contests list`)."""
    return list(session.execute(select(Contest).order_by(col(Contest.start_at), col(Contest.id))).scalars())


def partner_codes(*, session: Session) -> dict[int, str]:
    """Every partner's code by id: a report names partners by their code."""
    return {pid: code for pid, code in session.execute(select(col(Partner.id), col(Partner.code)))}


def team_codes(*, session: Session) -> dict[int, str]:
    """Every team's code by id."""
    return {tid: code for tid, code in session.execute(select(col(Team.id), col(Team.code)))}
