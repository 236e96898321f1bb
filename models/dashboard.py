"""The console's dashboard: every figure of the program at a glance, as plain values (no words).

One function per block, each keyword-only, taking the session, `now` and the program settings it
needs (the caller reads them from `bot.settings`; models never import `bot`). Every count and sum
is an aggregate in SQL; nothing here walks the sales ledger row by row in Python.

- `contest_figures`: the open contests (running, settling, upcoming): days left, participants,
  the public top 3 (as the chat's board: `standings.top`), how many reached each tier.
- `partner_figures`: how many partners, bound by platform, by team and region, not joined yet.
- `points_figures`: the outstanding balance (the liability), this month's ledger by kind, the
  redemptions waiting for a decision.
- `delivery_figures`: the pushes of the last 24 hours by channel and status, and which channel fails.
- `sales_figures`: the last import, and sales per day of this month.
- `warnings`: what needs the admin, as (kind, params) values; `messages/` words them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import case, func, literal, select, union_all
from sqlmodel import Session, col

from models import contests as contest_ops
from models import delivery_report, partners, standings
from models.kinds import Metric, Platform, RedemptionStatus, Scope
from models.roster import TAKING_PART
from models.rows import ContestRow
from models.rules import next_period
from models.tables import ChatIdentity, Contest, Partner, PointsEntry, Redemption, Sale
from models.values import as_utc, zone

SHOWN_STATUSES = ("active", "settling", "upcoming")
DELIVERY_WINDOW = timedelta(hours=24)
FAILING_MIN = 5  # a channel is failing from this many failed pushes in the window …
FAILING_SHARE_PCT = 20  # … when they are at least this share of the pushes it finished (sent or failed)
CLOSING_HOURS = 48


def month_bounds(now: datetime, timezone: str) -> tuple[datetime, datetime]:
    """The calendar month holding `now` in the program's time zone, as aware UTC [start, end)."""
    tz = zone(timezone)
    local = as_utc(now).astimezone(tz)
    first = date(local.year, local.month, 1)
    nxt = date(first.year + first.month // 12, first.month % 12 + 1, 1)
    return (datetime.combine(first, time(), tzinfo=tz).astimezone(UTC),
            datetime.combine(nxt, time(), tzinfo=tz).astimezone(UTC))


# --- 1. contests -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Leader:
    """One line of a contest's public top 3: a partner, or a team in a team contest."""

    rank: int
    code: str
    name: str
    score: int  # hundredths of the metric's unit (models.rules)


@dataclass(frozen=True)
class ContestFigures:
    id: int
    name: str
    metric: str
    scope: str
    status: str  # active, settling or upcoming (models.contests.status)
    start_at: datetime
    end_at: datetime
    days_left: int  # whole days to the end of the period, rounded up; 0 once it has ended
    days_to_start: int  # whole days until it starts, rounded up; 0 once it has started
    participants: int  # partners with a line in the standings (members of the teams in a team contest)
    teams: int  # teams with a line (team contests; 0 otherwise)
    top: tuple[Leader, ...]  # ranks 1-3 with a score above zero; all who tie for third stay (at most 6)
    tiers: dict[str, int]  # every tier of the contest, lowest threshold first → how many reached it
    stale: bool  # an import changed the data since the standings were built (the refresh is due)
    standings_at: datetime | None


def days_left(moment: datetime, now: datetime) -> int:
    """Whole days from `now` to `moment`, rounded up (5 hours is a day); 0 once it has passed."""
    return max(0, math.ceil((as_utc(moment) - as_utc(now)).total_seconds() / 86400))


def contest_figures(session: Session, *, now: datetime, top_n: int = 3) -> list[ContestFigures]:
    """The open contests, running ones first (soonest end first), then the upcoming ones by start.

    Read from the live standings cache as it is (`Standing`): the same lines the chat's board shows.
    A rebuild of a stale cache is the imports' and the scheduler's work, not a page's: `stale` says
    one is due.
    """
    rows = [c for c in contest_ops.open_contest_rows(session) if contest_ops.status(c, now) in SHOWN_STATUSES]
    rows.sort(key=lambda c: (contest_ops.status(c, now) == "upcoming",
                             as_utc(c.start_at if contest_ops.status(c, now) == "upcoming" else c.end_at), c.id))
    return [_one_contest(session, c, now, top_n) for c in rows]


def _one_contest(session: Session, contest: ContestRow, now: datetime, top_n: int) -> ContestFigures:
    team = contest.scope == Scope.TEAM
    lines = standings.top(session, contest, top_n)
    if team:
        labels = partners.team_labels(session, ids={x.team_id for x in lines if x.team_id is not None})
        keys = [x.team_id for x in lines]
    else:
        labels = partners.partner_labels(session, ids={x.partner_id for x in lines if x.partner_id is not None})
        keys = [x.partner_id for x in lines]
    top = tuple(Leader(line.rank or 0, *labels.get(key, ("", "")) if key is not None else ("", ""), line.score)
                for line, key in zip(lines, keys, strict=True))
    reached = standings.tier_counts(session, contest=contest)
    tiers = {str(t["name"]): reached.get(str(t["name"]), 0)
             for t in sorted(contest.tiers, key=lambda t: int(t["threshold"]))}
    return ContestFigures(
        id=contest.id, name=contest.name, metric=contest.metric, scope=contest.scope,
        status=contest_ops.status(contest, now), start_at=as_utc(contest.start_at), end_at=as_utc(contest.end_at),
        days_left=days_left(contest.end_at, now), days_to_start=days_left(contest.start_at, now),
        participants=standings.line_count(session, contest=contest, kind="member" if team else "partner"),
        teams=standings.line_count(session, contest=contest, kind="team") if team else 0,
        top=top, tiers=tiers, stale=contest.standings_dirty,
        standings_at=as_utc(contest.standings_at) if contest.standings_at else None)


# --- 2. partners -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Group:
    """A team (code, name) or a region (name, name) and how many active partners it has (the largest
    first; equal teams in the order they were created, equal regions by name; those without a team or
    region after the others of their size)."""

    code: str | None  # None: the partners without a team / region
    name: str | None
    partners: int


@dataclass(frozen=True)
class PartnerFigures:
    total: int  # every partner row
    active: int
    bound: int  # active partners with an active chat account on any platform (`roster`'s bound)
    bound_by_platform: dict[str, int]  # telegram, wechat, wecom, console (the terminal chat): each present
    not_joined: int  # active dealers and captains with no active chat account: `roster.listing(
    #                  Selection(unbound=True), invitable=True)`, who an invite is for
    teams: tuple[Group, ...]  # the largest first, at most `groups`
    regions: tuple[Group, ...]
    other_teams: int  # active partners in the teams not listed
    other_regions: int


def _platforms_of_partners() -> Any:
    """Per partner with an active chat account (bound, as `roster` filters: any platform), a 0/1
    column per platform."""
    i = ChatIdentity
    flags = [func.max(case((col(i.platform) == name, 1), else_=0)).label(str(name)) for name in Platform]
    return (select(col(i.partner_id).label("partner_id"), *flags).where(col(i.active).is_(True))
            .group_by(col(i.partner_id)).subquery())


def partner_figures(session: Session, *, now: datetime, groups: int = 10) -> PartnerFigures:
    """Counts over the partners (the active ones, but `total`); `now` is taken for the common signature.

    Three passes: the partners by region (with the totals), the active ones by team (its index),
    the chat accounts by partner (bound, per platform, and the bound among those taking part)."""
    del now
    p = Partner
    active = col(p.active).is_(True)
    taking_part = active & col(p.role).in_(TAKING_PART)
    by_region = session.execute(
        select(col(p.region), func.count(), func.sum(case((active, 1), else_=0)),
               func.sum(case((taking_part, 1), else_=0)))
        .group_by(col(p.region))).all()
    total = sum(int(n) for _r, n, _a, _t in by_region)
    n_active = sum(int(a or 0) for _r, _n, a, _t in by_region)
    n_taking_part = sum(int(t or 0) for _r, _n, _a, t in by_region)
    regions_all = sorted(((r, int(a or 0)) for r, _n, a, _t in by_region if a),
                         key=lambda x: (-x[1], x[0] is None, x[0] or ""))
    team_rows = sorted(((tid, int(n)) for tid, n in session.execute(
        select(col(p.team_id), func.count()).where(active).group_by(col(p.team_id)))),
        key=lambda x: (-x[1], x[0] is None, x[0] or 0))
    shown = team_rows[:groups]
    labels = partners.team_labels(session, ids={tid for tid, _n in shown if tid is not None})
    b = _platforms_of_partners()
    bound, taking_part_bound, *per = session.execute(
        select(func.count(), func.coalesce(func.sum(case((col(p.role).in_(TAKING_PART), 1), else_=0)), 0),
               *(func.coalesce(func.sum(b.c[str(name)]), 0) for name in Platform))
        .select_from(b).join(p, col(p.id) == b.c.partner_id).where(active)).one()
    no_team: tuple[str | None, str | None] = (None, None)
    teams = tuple(Group(*(labels.get(tid, no_team) if tid is not None else no_team), n) for tid, n in shown)
    return PartnerFigures(
        total=total, active=n_active, bound=int(bound),
        bound_by_platform={str(name): int(n) for name, n in zip(Platform, per, strict=True)},
        not_joined=n_taking_part - int(taking_part_bound),
        teams=teams, regions=tuple(Group(r, r, n) for r, n in regions_all[:groups]),
        other_teams=n_active - sum(g.partners for g in teams),
        other_regions=sum(n for _r, n in regions_all[groups:]))


# --- 3. points ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class PointsFigures:
    outstanding: int  # the sum of every balance: points the program owes (models.points)
    earned_month: int  # `earned` entries this month (contest prizes, trainings …)
    spent_month: int  # points reserved by redemptions this month (positive), before refunds
    refunded_month: int  # given back by rejected redemptions this month
    adjusted_month: int  # admins' corrections this month, net (may be negative)
    expired_month: int  # expired this month (positive)
    pending_redemptions: int
    pending_points: int  # the points those pending redemptions hold
    month_start: datetime  # the month (program time zone) as aware UTC [start, end)
    month_end: datetime


def points_figures(session: Session, *, now: datetime, timezone: str) -> PointsFigures:
    """The ledger's total and this month's movements (the month of `now` in `timezone`)."""
    start, end = month_bounds(now, timezone)
    pe = PointsEntry
    outstanding = session.execute(select(func.coalesce(func.sum(col(pe.amount)), 0))).scalar_one()
    by_kind = {str(kind): int(total or 0) for kind, total in session.execute(
        select(col(pe.kind), func.sum(col(pe.amount)))
        .where(col(pe.created_at) >= as_utc(start), col(pe.created_at) < as_utc(end)).group_by(col(pe.kind)))}
    pending, held = session.execute(
        select(func.count(), func.coalesce(func.sum(col(Redemption.points)), 0))
        .where(col(Redemption.status) == RedemptionStatus.PENDING)).one()
    return PointsFigures(
        outstanding=int(outstanding), earned_month=by_kind.get("earned", 0), spent_month=-by_kind.get("spent", 0),
        refunded_month=by_kind.get("refunded", 0), adjusted_month=by_kind.get("adjusted", 0),
        expired_month=-by_kind.get("expired", 0), pending_redemptions=int(pending), pending_points=int(held),
        month_start=start, month_end=end)


# --- 4. deliveries -----------------------------------------------------------------------------


@dataclass(frozen=True)
class ChannelDeliveries:
    """A channel's pushes queued in the window, by their status now.

    `failing`: at least FAILING_MIN pushes failed (the platform refused them, retries spent) and
    they are at least FAILING_SHARE_PCT percent of the pushes the channel finished (sent + failed).
    Blocked (the user's choice) and undeliverable (no way to reach that account, e.g. WeChat's
    window closed) say nothing about the channel itself.
    """

    platform: str
    sent: int
    pending: int  # waiting or being sent (pending + sending)
    failed: int
    blocked: int
    undeliverable: int
    failing: bool
    top_reason: str | None  # the most frequent error of the failed (or retrying) pushes, as recorded


def _failing(sent: int, failed: int) -> bool:
    return failed >= FAILING_MIN and failed * 100 >= FAILING_SHARE_PCT * (sent + failed)


def delivery_figures(session: Session, *, now: datetime, channels: Sequence[str] = (),
                     window: timedelta = DELIVERY_WINDOW) -> list[ChannelDeliveries]:
    """Pushes queued in the last `window` (by `created_at`), per platform (`delivery_report.report`).

    `channels`: the platforms configured to send (`Settings.sends`): listed even with no push.
    """
    found = delivery_report.report(session, since=as_utc(now) - window)
    counts: dict[str, dict[str, int]] = found["channels"]
    reasons: dict[str, str] = {}
    for r in found["reasons"]:  # most frequent first
        if r["status"] in ("failed", "pending"):
            reasons.setdefault(r["platform"], r["reason"])
    out = []
    for platform in sorted(set(counts) | set(channels)):
        c = counts.get(platform, {})
        sent, failed = c.get("sent", 0), c.get("failed", 0)
        out.append(ChannelDeliveries(
            platform=platform, sent=sent, pending=c.get("pending", 0) + c.get("sending", 0), failed=failed,
            blocked=c.get("blocked", 0), undeliverable=c.get("undeliverable", 0), failing=_failing(sent, failed),
            top_reason=reasons.get(platform)))
    return out


# --- 5. sales ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class SalesDay:
    day: date  # in the program's time zone
    amount_fen: int  # net of corrections
    units: int
    sales: int  # ledger rows (a correction is one)


@dataclass(frozen=True)
class SalesFigures:
    last_import_at: datetime | None  # when the newest sales were stored (aware UTC)
    last_import_rows: int  # sales that import added (an import stores all its rows at one moment)
    days: tuple[SalesDay, ...]  # every day of this month up to today, in order (days without sales: 0)
    month_amount_fen: int
    month_units: int


def sales_version(session: Session) -> int:
    """The newest sale's id: the ledger is append-only (a correction is a new row), so while this
    and the day stay the same, `sales_figures` gives the same answer (one index probe)."""
    return int(session.execute(select(func.max(col(Sale.id)))).scalar_one() or 0)


def sales_figures(session: Session, *, now: datetime, timezone: str) -> SalesFigures:
    """The last import (from the ledger's `imported_at`: one import writes all its rows with the same
    moment) and sales per day of this month in `timezone`, from its first day to today."""
    s = Sale
    last = session.execute(select(func.max(col(s.imported_at)))).scalar_one()
    rows = 0
    if last is not None:
        rows = int(session.execute(select(func.count()).where(col(s.imported_at) == last)).scalar_one())
    tz = zone(timezone)
    start, _end = month_bounds(now, timezone)
    today = as_utc(now).astimezone(tz).date()
    first = start.astimezone(tz).date()
    days = [first + timedelta(days=i) for i in range((today - first).days + 1)]
    edges = [start] + [datetime.combine(d + timedelta(days=1), time(), tzinfo=tz).astimezone(UTC) for d in days]
    # One range aggregate per day, on the (occurred_at, partner) index, in one statement: a GROUP BY
    # over an expression of the time would sort the month's rows first (four times slower on SQLite).
    per_day = [select(literal(i).label("day"), func.sum(col(s.amount_fen)), func.sum(col(s.units)), func.count())
               .where(col(s.occurred_at) >= lo, col(s.occurred_at) < hi)
               for i, (lo, hi) in enumerate(zip(edges, edges[1:], strict=False))]
    per = {int(i): (int(a or 0), int(u or 0), int(n)) for i, a, u, n in session.execute(union_all(*per_day))}
    out = tuple(SalesDay(d, *per.get(i, (0, 0, 0))) for i, d in enumerate(days))
    return SalesFigures(last_import_at=as_utc(last) if last is not None else None, last_import_rows=rows,
                        days=out, month_amount_fen=sum(x.amount_fen for x in out),
                        month_units=sum(x.units for x in out))


# --- 6. warnings -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Alert:
    """Something that needs the admin: `kind` names the message (`messages/…/console.toml`), `params` fill it.

    Kinds: `targets_missing` (contest_id, name, start_at, end_at, missing: participants without a
    target for the contest's next period), `wechat_no_template`, `channel_failing` (platform,
    failed, sent, reason), `contest_closing` (contest_id, name, end_at, hours_left).
    """

    kind: str
    params: dict[str, Any] = field(default_factory=dict)


def warnings(session: Session, *, now: datetime, channels: Sequence[str] = (), wechat_official_account: bool = False,
             wechat_template: bool = False, closing_hours: int = CLOSING_HOURS,
             deliveries: Sequence[ChannelDeliveries] | None = None) -> list[Alert]:
    """What needs the admin now, most urgent kinds first.

    `channels`: the platforms configured to send (`Settings.sends`); `wechat_official_account`:
    the WeChat Official Account is configured (`Settings.sends("wechat")`); `wechat_template`:
    `MIANZI_WECHAT_TEMPLATE_ID` is set (without it no push reaches anyone outside their 48-hour window).
    `deliveries`: `delivery_figures` of the same moment, when the caller has them already (else computed).
    """
    alerts: list[Alert] = []
    if deliveries is None:
        deliveries = delivery_figures(session, now=now, channels=channels)
    for ch in deliveries:
        if ch.failing and ch.platform in channels:
            alerts.append(Alert("channel_failing", {"platform": ch.platform, "failed": ch.failed, "sent": ch.sent,
                                                    "reason": ch.top_reason}))
    if wechat_official_account and not wechat_template:
        alerts.append(Alert("wechat_no_template"))
    open_rows = contest_ops.open_contest_rows(session)
    for c in open_rows:
        left = as_utc(c.end_at) - as_utc(now)
        if contest_ops.status(c, now) == "active" and left <= timedelta(hours=closing_hours):
            alerts.append(Alert("contest_closing", {"contest_id": c.id, "name": c.name, "end_at": as_utc(c.end_at),
                                                    "hours_left": math.ceil(left.total_seconds() / 3600)}))
    for c in open_rows:
        if c.metric == Metric.ATTAINMENT and c.recur != "none":
            alerts.extend(_targets_missing(session, c, now))
    return alerts


def _targets_missing(session: Session, contest: ContestRow, now: datetime) -> list[Alert]:
    """A recurring attainment contest's next period — its own when it has not started, else the one
    after it — and its participants without a target for it (`standings.lacking_target_count`)."""
    if contest_ops.status(contest, now) == "upcoming":
        start, end = as_utc(contest.start_at), as_utc(contest.end_at)
    else:
        period = next_period(as_utc(contest.start_at), as_utc(contest.end_at), contest.recur, zone(contest.timezone))
        start, end = period.start, period.end
    probe = Contest(name=contest.name, metric=contest.metric, scope=contest.scope, start_at=start, end_at=end,
                    timezone=contest.timezone, segment=contest.segment, created_at=now)
    missing = standings.lacking_target_count(session, contest=probe)
    if not missing:
        return []
    return [Alert("targets_missing", {"contest_id": contest.id, "name": contest.name, "start_at": start,
                                      "end_at": end, "missing": missing})]
