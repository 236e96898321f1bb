"""A realistic sample program for `mianzi demo`: dealers in teams across city tiers, a month of sales,
and two running contests (an individual revenue champion and a team attainment race)."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlmodel import Session

from models import contests
from models.imports.partners import PARTNER_COLUMNS, import_partners
from models.imports.records import rows_from_records
from models.imports.sale_rows import SALE_COLUMNS
from models.imports.sales import import_sales
from models.imports.targets import TARGET_COLUMNS, import_targets
from models.rules import parse_prizes, parse_score, parse_tiers

SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
GIVEN = ["强", "娜", "伟", "敏", "静", "磊", "洋", "艳", "勇", "军", "杰", "娟", "涛", "明", "超", "秀英", "丽", "鹏", "华", "飞"]
TEAMS = [("华东一队", "华东", 1), ("华东二队", "华东", 2), ("华南先锋", "华南", 1), ("华南二队", "华南", 3),
         ("华北联盟", "华北", 2), ("西南开拓", "西南", 3)]
INDUSTRIES = ["建材", "家电", "五金"]
SIZES = ["large", "medium", "small"]

DEMO_ADMIN = "ADMIN"
DEMO_CAPTAIN = "D001"
DEMO_DEALER = "D002"


def build(session: Session, tz: ZoneInfo, now: datetime | None = None, seed: int = 7) -> dict[str, int]:
    """Fill an empty database with the sample program; returns the two contests' ids."""
    now = now or datetime.now(UTC)
    rng = random.Random(seed)
    local_now = now.astimezone(tz)
    month_start = local_now.date().replace(day=1)
    next_month = (month_start + timedelta(days=32)).replace(day=1)
    month_end = next_month - timedelta(days=1)

    partners = [{"code": DEMO_ADMIN, "name": "渠道经理 孙丽", "role": "admin", "locale": "zh"}]
    n = 0
    for team, region, tier in TEAMS:
        for i in range(6):
            n += 1
            joined = date(2021, 1, 1) + timedelta(days=rng.randrange(0, 1900))
            if n == 5:
                joined = month_start - timedelta(days=20)  # a newcomer: too new for the tenure rule
            partners.append({
                "code": f"D{n:03d}", "name": rng.choice(SURNAMES) + rng.choice(GIVEN), "team": team,
                "region": region, "city_tier": str(tier), "industry": rng.choice(INDUSTRIES),
                "size": rng.choice(SIZES), "joined_on": joined.isoformat(),
                "role": "captain" if i == 0 else "dealer", "locale": "en" if n % 9 == 0 else "zh"})
    import_partners(session, rows_from_records(partners, PARTNER_COLUMNS))

    targets = []
    for p in partners[1:]:
        base = {1: 300000, 2: 180000, 3: 90000}[int(p["city_tier"])]
        targets.append({"partner": p["code"], "period_start": month_start.isoformat(),
                        "period_end": month_end.isoformat(), "target": str(base + rng.randrange(0, 5) * 10000)})
    import_targets(session, rows_from_records(targets, TARGET_COLUMNS))

    sales = []
    elapsed = max((local_now.date() - month_start).days, 1)
    last_month = (month_start - timedelta(days=1)).replace(day=1)
    for p in partners[1:]:
        for k in range(rng.randrange(3, 10)):
            day = last_month + timedelta(days=rng.randrange(0, (month_start - last_month).days))
            amount = round(rng.uniform(3000, 40000) * {1: 1.0, 2: 0.6, 3: 0.4}[int(p["city_tier"])], 2)
            sales.append({"id": f"{p['code']}-{last_month:%Y%m}-{k}", "partner": p["code"],
                          "occurred_at": f"{day.isoformat()}T{rng.randrange(8, 21):02d}:30:00",
                          "amount": f"{amount:.2f}", "units": rng.randrange(1, 30), "margin": "",
                          "customer": f"C{rng.randrange(1, 400)}", "satisfaction": rng.choice([4, 5, ""])})
    for p in partners[1:]:
        strength = rng.uniform(0.3, 1.6) * {1: 1.0, 2: 0.6, 3: 0.35}[int(p["city_tier"])]
        for k in range(rng.randrange(4, 16)):
            day = month_start + timedelta(days=rng.randrange(0, elapsed))
            at = datetime(day.year, day.month, day.day, rng.randrange(8, 21), rng.randrange(0, 60))
            amount = round(rng.uniform(2000, 30000) * strength, 2)
            sales.append({"id": f"{p['code']}-{month_start:%Y%m}-{k}", "partner": p["code"],
                          "occurred_at": at.isoformat(), "amount": f"{amount:.2f}",
                          "units": rng.randrange(1, 40), "margin": f"{amount * 0.18:.2f}",
                          "customer": f"C{rng.randrange(1, 400)}", "satisfaction": rng.choice([3, 4, 4, 5, 5, ""])})
    import_sales(session, rows_from_records(sales, SALE_COLUMNS), tz, now=now)

    previous = contests.create(session, contests.ContestSpec(
        name=f"{last_month.month}月销售冠军", metric="revenue", timezone=tz.key,
        start_at=datetime.combine(last_month, datetime.min.time(), tzinfo=tz),
        end_at=datetime.combine(month_start, datetime.min.time(), tzinfo=tz),
        prizes=parse_prizes("1=1000,2=600,3=300"), tiers=parse_tiers("铜牌=50000:50,银牌=100000:150", "revenue")),
        now=now)
    contests.close(session, previous.id, now)

    start = datetime.combine(month_start, datetime.min.time(), tzinfo=tz)
    end = datetime.combine(next_month, datetime.min.time(), tzinfo=tz)
    champion = contests.create(session, contests.ContestSpec(
        name=f"{month_start.month}月销售冠军", metric="revenue", start_at=start, end_at=end, timezone=tz.key,
        grace_seconds=6 * 3600, min_tenure_days=90, prizes=parse_prizes("1=1000,2=600,3=300"),
        tiers=parse_tiers("铜牌=50000:50,银牌=100000:150,金牌=200000:400:1.5%", "revenue"), top_n=10,
        recur="monthly"), now=now)
    teams = contests.create(session, contests.ContestSpec(
        name=f"{month_start.month}月团队达成率竞赛", metric="attainment", scope="team", team_score="avg",
        start_at=start, end_at=end, timezone=tz.key, prizes=parse_prizes("1=500,2=300,3=100"),
        min_satisfaction=parse_score("3", "satisfaction"), top_n=6, recur="monthly"), now=now)
    return {"champion": champion.id, "teams": teams.id}
