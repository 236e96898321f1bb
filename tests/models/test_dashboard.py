"""The console dashboard's figures (`models.dashboard`) on crafted data: every number exactly."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from sqlalchemy import select, update
from sqlmodel import Session

from models import dashboard, outbox, points, rewards, roster, standings
from models.dashboard import Alert, ChannelDeliveries, Group, Leader, SalesDay
from models.imports.records import rows_from_records
from models.rewards import CATALOG_COLUMNS
from models.roster import Selection
from models.tables import ChatIdentity, Contest, Outbox, Partner
from tests.support import builders as b

SH = b.SH
NOW = datetime(2026, 11, 20, 10, 0, tzinfo=SH)  # b.MID: a Friday in November, Shanghai


def ids(session: Session) -> dict[str, int]:
    return {code: pid for pid, code in session.execute(select(Partner.id, Partner.code))}


def bind(session: Session, code: str, platform: str, active: bool = True) -> None:
    pid = ids(session)[code]
    session.add(ChatIdentity(partner_id=pid, platform=platform, user_ref=f"{platform}-{code}", chat_ref=code,
                             active=active, bound_at=NOW))
    session.flush()


def five_partners(session: Session) -> None:
    b.partners(session, {"code": "A", "name": "阿里", "team": "T1", "region": "华东"},
               {"code": "B", "name": "百度", "team": "T1", "region": "华东"},
               {"code": "C", "name": "长城", "team": "T2", "region": "华南", "role": "captain"},
               {"code": "D", "name": "大华", "team": "T2", "region": "华南"},
               {"code": "E", "name": "管理员", "role": "admin"})
    session.execute(update(Partner).where(Partner.code == "D").values(active=False))  # type: ignore[arg-type]


# --- 1. contests -------------------------------------------------------------------------------


def test_contests_running_and_upcoming_with_top_three_and_tiers(session: Session) -> None:
    five_partners(session)
    b.sales(session, {"id": "1", "partner": "A", "occurred_at": "2026-11-02T10:00", "amount": "900"},
            {"id": "2", "partner": "B", "occurred_at": "2026-11-03T10:00", "amount": "500"},
            {"id": "3", "partner": "C", "occurred_at": "2026-11-04T10:00", "amount": "500"},
            {"id": "4", "partner": "C", "occurred_at": "2026-11-01T09:00", "amount": "100"})
    running = b.contest(session, tiers="铜=500:10,银=800:50", name="11月冠军")
    upcoming = b.contest(session, start="2026-12-01", end="2026-12-31", name="12月冠军")
    closed = b.contest(session, start="2026-10-01", end="2026-10-31", name="10月冠军")
    session.execute(update(Contest).where(Contest.id == closed.id).values(closed_at=NOW))
    for c in (running, upcoming):
        standings.refresh(session, c.id)

    figures = dashboard.contest_figures(session, now=NOW.astimezone(UTC))

    assert [f.id for f in figures] == [running.id, upcoming.id]
    now_ = figures[0]
    assert (now_.name, now_.metric, now_.status, now_.days_left, now_.days_to_start) == ("11月冠军", "revenue",
                                                                                          "active", 11, 0)
    assert now_.start_at == datetime(2026, 11, 1, tzinfo=SH) and now_.end_at == datetime(2026, 12, 1, tzinfo=SH)
    assert now_.participants == 3 and now_.teams == 0  # A, B, C: not the inactive D, not the admin E
    # C reached 600 (two sales) before B reached 500: A, C, B
    assert now_.top == (Leader(1, "A", "阿里", 90000), Leader(2, "C", "长城", 60000), Leader(3, "B", "百度", 50000))
    assert now_.tiers == {"铜": 2, "银": 1}
    assert now_.stale is False and now_.standings_at is not None
    later = figures[1]
    assert (later.status, later.days_left, later.days_to_start, later.participants, later.top, later.tiers) == (
        "upcoming", 42, 11, 3, (), {})


def test_contests_team_scope_and_a_stale_cache(session: Session) -> None:
    five_partners(session)
    b.sales(session, {"id": "1", "partner": "A", "occurred_at": "2026-11-02T10:00", "amount": "100"},
            {"id": "2", "partner": "C", "occurred_at": "2026-11-03T10:00", "amount": "300"})
    team = b.contest(session, scope="team")
    standings.refresh(session, team.id)
    b.sales(session, {"id": "3", "partner": "B", "occurred_at": "2026-11-04T10:00", "amount": "500"})  # marks dirty

    [f] = dashboard.contest_figures(session, now=NOW)

    assert (f.participants, f.teams, f.stale) == (3, 2, True)
    assert f.top == (Leader(1, "T2", "T2", 30000), Leader(2, "T1", "T1", 10000))  # the cache as it is


# --- 2. partners -------------------------------------------------------------------------------


def test_partners_bound_by_platform_team_region_and_not_joined(session: Session) -> None:
    five_partners(session)
    b.partners(session, {"code": "F", "name": "F", "region": ""})
    bind(session, "A", "telegram")
    bind(session, "A", "wechat")  # bound twice: one partner
    bind(session, "B", "wecom", active=False)  # unbound again: not bound
    bind(session, "C", "wechat")
    bind(session, "D", "telegram")  # inactive partner: not counted
    bind(session, "E", "console")  # the terminal chat binds too

    f = dashboard.partner_figures(session, now=NOW, groups=2)

    assert (f.total, f.active, f.bound) == (6, 5, 3)
    assert f.bound_by_platform == {"telegram": 1, "wechat": 2, "wecom": 0, "console": 1}
    assert f.not_joined == 2  # B and F (E is an admin, D inactive)
    assert f.not_joined == len(roster.listing(session, Selection(unbound=True), invitable=True))  # the list's filter
    assert f.teams == (Group("T1", "T1", 2), Group(None, None, 2)) and f.other_teams == 1  # T2: C only
    assert f.regions == (Group("华东", "华东", 2), Group(None, None, 2)) and f.other_regions == 1


# --- 3. points ---------------------------------------------------------------------------------


def test_points_outstanding_this_month_and_pending_redemptions(session: Session) -> None:
    five_partners(session)
    pid = ids(session)
    october = datetime(2026, 10, 31, 23, 0, tzinfo=SH)  # 15:00 UTC: still October in Shanghai
    points.credit(session, pid["A"], 1000, "earned", {}, "e1", october)
    points.credit(session, pid["A"], 300, "earned", {}, "e2", datetime(2026, 11, 1, 0, 30, tzinfo=SH))
    points.credit(session, pid["B"], 200, "earned", {}, "e3", NOW)
    points.adjust(session, pid["B"], -50, "纠错", None, NOW)
    rewards.import_catalog(session, rows_from_records([{"sku": "CUP", "name_zh": "杯子", "points": "400",
                                                        "stock": "5"}], CATALOG_COLUMNS), NOW)
    first, _item = rewards.redeem(session, pid["A"], "CUP", NOW)
    second, _item = rewards.redeem(session, pid["A"], "CUP", NOW)
    rewards.reject(session, second.id, None, "缺货", NOW)
    points.credit(session, pid["C"], 999, "earned", {}, "e4", datetime(2026, 12, 1, 0, 0, tzinfo=SH))  # December

    f = dashboard.points_figures(session, now=NOW, timezone="Asia/Shanghai")

    assert f.outstanding == 1000 + 300 + 200 - 50 - 400 - 400 + 400 + 999
    assert (f.earned_month, f.spent_month, f.refunded_month, f.adjusted_month, f.expired_month) == (500, 800, 400,
                                                                                                    -50, 0)
    assert (f.pending_redemptions, f.pending_points) == (1, 400)
    assert f.month_start == datetime(2026, 11, 1, tzinfo=SH) and f.month_end == datetime(2026, 12, 1, tzinfo=SH)


# --- 4. deliveries -----------------------------------------------------------------------------


def push(session: Session, n: int, platform: str, status: str, created: datetime, error: str | None = None) -> None:
    start = session.execute(select(Outbox.id).order_by(Outbox.id.desc())).scalars().first() or 0  # type: ignore
    keys = [f"k{start}-{platform}-{status}-{i}" for i in range(n)]
    outbox.queue(session, [outbox.to_group(key=k, kind="broadcast", platform=platform, chat_ref="c", payload={})
                           for k in keys], now=created)
    session.execute(update(Outbox).where(Outbox.key.in_(keys)).values(status=status, last_error=error))  # type: ignore


def test_deliveries_of_the_last_day_by_channel_and_the_failing_one(session: Session) -> None:
    hour_ago = NOW - timedelta(hours=1)
    push(session, 10, "telegram", "sent", hour_ago)
    push(session, 2, "telegram", "failed", hour_ago, "timeout")  # 2 of 12: not failing
    push(session, 1, "telegram", "blocked", hour_ago)
    push(session, 3, "wechat", "sent", hour_ago)
    push(session, 5, "wechat", "failed", hour_ago, "40001 invalid credential")
    push(session, 1, "wechat", "pending", hour_ago, "timeout")
    push(session, 1, "wechat", "sending", hour_ago)
    push(session, 2, "wechat", "undeliverable", hour_ago, "wechat_window_closed")
    push(session, 50, "wechat", "failed", NOW - timedelta(hours=25), "old")  # before the window

    f = dashboard.delivery_figures(session, now=NOW, channels=("telegram", "wechat", "wecom"))

    assert f == [
        ChannelDeliveries("telegram", sent=10, pending=0, failed=2, blocked=1, undeliverable=0, failing=False,
                          top_reason="timeout"),
        ChannelDeliveries("wechat", sent=3, pending=2, failed=5, blocked=0, undeliverable=2, failing=True,
                          top_reason="40001 invalid credential"),
        ChannelDeliveries("wecom", sent=0, pending=0, failed=0, blocked=0, undeliverable=0, failing=False,
                          top_reason=None),
    ]


# --- 5. sales ----------------------------------------------------------------------------------


def test_sales_last_import_and_per_day_in_the_program_time_zone(session: Session) -> None:
    five_partners(session)
    first = datetime(2026, 11, 18, 9, 0, tzinfo=UTC)
    last = datetime(2026, 11, 19, 9, 0, tzinfo=UTC)
    b.sales(session, {"id": "1", "partner": "A", "occurred_at": "2026-11-01T00:10", "amount": "100", "units": 2},
            {"id": "2", "partner": "B", "occurred_at": "2026-10-31T23:50", "amount": "999"},  # October
            {"id": "3", "partner": "B", "occurred_at": "2026-11-03T23:59", "amount": "50.50", "units": 3},
            now=first)
    b.sales(session, {"id": "4", "partner": "C", "occurred_at": "2026-11-03T08:00", "amount": "20"},
            {"id": "5", "partner": "C", "occurred_at": "2026-11-20T09:00", "amount": "1"},
            {"id": "6", "partner": "C", "occurred_at": "2026-11-21T09:00", "amount": "7"},  # after today
            now=last)

    f = dashboard.sales_figures(session, now=NOW, timezone="Asia/Shanghai")

    assert (f.last_import_at, f.last_import_rows) == (last, 3)
    assert len(f.days) == 20 and f.days[0].day == date(2026, 11, 1) and f.days[-1].day == date(2026, 11, 20)
    assert f.days[0] == SalesDay(date(2026, 11, 1), 10000, 2, 1)
    assert f.days[2] == SalesDay(date(2026, 11, 3), 7050, 4, 2)
    assert f.days[19] == SalesDay(date(2026, 11, 20), 100, 1, 1)
    assert sum(d.sales for d in f.days) == 4
    assert (f.month_amount_fen, f.month_units) == (17150, 7)


def test_sales_of_an_empty_ledger(session: Session) -> None:
    f = dashboard.sales_figures(session, now=datetime(2026, 11, 1, 1, 0, tzinfo=SH), timezone="Asia/Shanghai")
    assert (f.last_import_at, f.last_import_rows, f.month_amount_fen) == (None, 0, 0)
    assert f.days == (SalesDay(date(2026, 11, 1), 0, 0, 0),)


# --- 6. warnings -------------------------------------------------------------------------------


def test_warnings(session: Session) -> None:
    five_partners(session)
    b.targets(session, {"partner": "A", "period_start": "2026-12-01", "period_end": "2026-12-31", "target": "100"})
    attain = b.contest(session, metric="attainment", recur="monthly", name="11月达成")  # next: December, B and C lack
    b.contest(session, metric="attainment", name="一次性")  # not recurring: no warning
    closing = b.contest(session, start="2026-11-01", end="2026-11-21", name="周冠军")  # ends 22:00 UTC+8 … tomorrow
    push(session, 6, "wechat", "failed", NOW - timedelta(hours=2), "40001")
    push(session, 6, "wecom", "failed", NOW - timedelta(hours=2), "x")  # not configured: no warning

    alerts = dashboard.warnings(session, now=NOW, channels=("telegram", "wechat"), wechat_official_account=True,
                                wechat_template=False)

    assert alerts == [
        Alert("channel_failing", {"platform": "wechat", "failed": 6, "sent": 0, "reason": "40001"}),
        Alert("wechat_no_template"),
        Alert("contest_closing", {"contest_id": closing.id, "name": "周冠军",
                                  "end_at": datetime(2026, 11, 22, tzinfo=SH).astimezone(UTC), "hours_left": 38}),
        Alert("targets_missing", {"contest_id": attain.id, "name": "11月达成",
                                  "start_at": datetime(2026, 12, 1, tzinfo=SH).astimezone(UTC),
                                  "end_at": datetime(2027, 1, 1, tzinfo=SH).astimezone(UTC), "missing": 2}),
    ]
    assert dashboard.warnings(session, now=NOW, wechat_official_account=True, wechat_template=True,
                              closing_hours=1) == [alerts[3]]


def test_targets_warning_of_an_upcoming_period_and_monthly_targets(session: Session) -> None:
    five_partners(session)
    b.targets(session, {"partner": "A", "period_start": "monthly", "period_end": "", "target": "100"},
              {"partner": "B", "period_start": "2026-12-01", "period_end": "2026-12-31", "target": "100"})
    december = b.contest(session, metric="attainment", recur="monthly", start="2026-12-01", end="2026-12-31",
                         name="12月达成")  # not started: its own period is the next one
    quarter = b.contest(session, metric="attainment", recur="quarterly", start="2026-10-01", end="2026-12-31",
                        name="Q4达成")  # next: Q1 2027, which no monthly amount covers

    alerts = dashboard.warnings(session, now=NOW)  # in the order of the contests' start

    assert alerts == [
        Alert("targets_missing", {"contest_id": quarter.id, "name": "Q4达成",
                                  "start_at": datetime(2027, 1, 1, tzinfo=SH).astimezone(UTC),
                                  "end_at": datetime(2027, 4, 1, tzinfo=SH).astimezone(UTC), "missing": 3}),
        Alert("targets_missing", {"contest_id": december.id, "name": "12月达成",
                                  "start_at": datetime(2026, 12, 1, tzinfo=SH).astimezone(UTC),
                                  "end_at": datetime(2027, 1, 1, tzinfo=SH).astimezone(UTC), "missing": 1}),  # C
    ]
