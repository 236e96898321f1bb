"""The dealer page's first view at 100,000 participants: server time (p50, p95) and weight.

Run by hand, never in CI:

    python bench/dealer.py                       # 100,000 partners in 10,000 teams, one sale each
    python bench/dealer.py --partners 5000       # quick

Builds its own SQLite database in `--out` (kept: a second run reuses it): partners in teams of
ten (one captain each), one sale each this month, an individual revenue contest (tiers, top 10)
and a team contest, both rebuilt once (`handlers.refresh.refresh_dirty`, timed too). Then the app
of `mianzi serve` (no channels, no background services) answers `GET /me/` in-process (Starlette's
TestClient: the server's own time, no network) for dealers spread over the ranking, for captains,
and `GET /me/api/calc`, each `--runs` times; sessions are opened as a sign-in opens them
(`models.web_sessions.open_session`).
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import func, select  # noqa: E402
from sqlmodel import Session  # noqa: E402

TARGET_P95_MS = 100.0
TARGET_BYTES = 100_000


def build(url: str, partners: int, seed: int = 17) -> None:
    from bot.migrate import upgrade
    from handlers.refresh import refresh_dirty
    from models import contests
    from models.db import make_engine, table_of
    from models.rules import parse_prizes, parse_tiers
    from models.tables import Partner, Sale, Team

    engine = make_engine(url)
    upgrade(engine)
    with engine.begin() as conn:
        if conn.execute(select(func.count()).select_from(Partner)).scalar_one():
            return
    rng = random.Random(seed)
    now = datetime.now(UTC)
    start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0) - timedelta(hours=8)
    teams = max(partners // 10, 1)
    t0 = time.perf_counter()
    with engine.begin() as conn:
        conn.execute(table_of(Team).insert(), [{"code": f"T{i:05d}", "name": f"团队{i}"} for i in range(teams)])
        team_ids = list(conn.execute(select(Team.id).order_by(Team.id)).scalars())
        conn.execute(table_of(Partner).insert(), [
            {"code": f"P{i:06d}", "name": f"经销商{i}", "team_id": team_ids[i % teams], "region": "华东",
             "city_tier": 1, "joined_on": date(2020, 1, 1), "role": "captain" if i < teams else "dealer",
             "locale": "zh", "active": True} for i in range(partners)])
        ids = list(conn.execute(select(Partner.id).order_by(Partner.id)).scalars())
        conn.execute(table_of(Sale).insert(), [
            {"ext_id": f"s{pid}", "partner_id": pid, "occurred_at": start + timedelta(seconds=rng.randrange(86400)),
             "amount_fen": rng.randrange(100, 20_000_000), "units": 1, "imported_at": now} for pid in ids])
    end = start + timedelta(days=40)
    with Session(engine) as s:
        for name, scope in (("本月销售冠军", "individual"), ("团队争霸", "team")):
            contests.create(s, contests.ContestSpec(
                name=name, metric="revenue", scope=scope, start_at=start, end_at=end,
                prizes=parse_prizes("1=500,2=300,3=100"),
                tiers=parse_tiers("铜牌=100000:50,银牌=500000:100,金牌=1000000:200", "revenue"), top_n=10))
        s.commit()
        t1 = time.perf_counter()
        refresh_dirty(s)
        s.commit()
    print(f"built {partners:,} partners, {teams:,} teams in {t1 - t0:.1f} s; standings rebuilt in "
          f"{time.perf_counter() - t1:.1f} s")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--partners", type=int, default=100_000)
    p.add_argument("--runs", type=int, default=40)
    p.add_argument("--out", type=Path, default=Path(tempfile.gettempdir()) / "mianzi-bench-dealer")
    a = p.parse_args()
    a.out.mkdir(parents=True, exist_ok=True)
    url = f"sqlite:///{a.out / f'dealer-{a.partners}.db'}"
    os.environ.update({"MIANZI_DATABASE_URL": url, "MIANZI_PUBLIC_URL": "http://bench.test",
                       "MIANZI_MEDIA_DIR": str(a.out / "media"), "MIANZI_CORE_PROCESS": "false"})
    for name in ("MIANZI_TELEGRAM_TOKEN", "MIANZI_WECHAT_APP_ID", "MIANZI_WECOM_CORP_ID", "MIANZI_API_TOKEN"):
        os.environ.pop(name, None)
    build(url, a.partners)

    from starlette.testclient import TestClient

    from bot.settings import get_settings
    from bot.web.app import create_app
    from models import web_sessions
    from models.db import make_engine
    from models.kinds import WebKind
    from models.tables import Contest, Partner, Standing

    engine = make_engine(url)
    with Session(engine) as s:
        solo = s.execute(select(Contest.id).where(Contest.scope == "individual")).scalar_one()
        people = {}
        for label, position in (("dealer, 1st", 1), ("dealer, 11th", 11), ("dealer, middle", a.partners // 2),
                                ("dealer, last", a.partners)):
            pid = s.execute(select(Standing.partner_id).where(Standing.contest_id == solo, Standing.kind == "partner",
                                                              Standing.position == position)).scalar_one()
            people[label] = s.get(Partner, pid)
        people["captain"] = s.execute(select(Partner).where(Partner.role == "captain").limit(1)).scalar_one()
        cookies = {label: web_sessions.open_session(s, partner=partner, kind=WebKind.DEALER, now=datetime.now(UTC),
                                                    idle=timedelta(hours=8)) for label, partner in people.items()}
        s.commit()
    get_settings.cache_clear()
    rows = []
    with TestClient(create_app(background=False)) as client:
        for label, cookie in cookies.items():
            client.cookies.set("mianzi_dealer", cookie, path="/me")
            first = client.get("/me/")
            assert first.status_code == 200, first.text[:300]
            size = len(first.content)
            times = []
            for _ in range(a.runs):
                t0 = time.perf_counter()
                answer = client.get("/me/")
                times.append((time.perf_counter() - t0) * 1000)
                assert answer.status_code == 200
            rows.append((f"GET /me/ ({label})", times, size))
            if label == "dealer, middle":
                times = []
                for i in range(a.runs):
                    t0 = time.perf_counter()
                    assert client.get("/me/api/calc", params={"contest": solo, "amount": 10_000 * i}).status_code == 200
                    times.append((time.perf_counter() - t0) * 1000)
                rows.append(("GET /me/api/calc (dealer, middle)", times, 0))
            client.cookies.clear()
    print(f"\n{a.partners:,} participants, {a.runs} requests each (in-process, server time)\n")
    print("| request | p50 ms | p95 ms | bytes | target |")
    print("|---|---:|---:|---:|---|")
    ok = True
    for name, times, size in rows:
        p95 = statistics.quantiles(times, n=20)[-1]
        good = p95 < TARGET_P95_MS and (size == 0 or size < TARGET_BYTES)
        ok = ok and good
        print(f"| {name} | {statistics.median(times):.1f} | {p95:.1f} | {size:,} | "
              f"{'✅' if good else '❌'} p95 < {TARGET_P95_MS:.0f} ms{', < 100 KB' if size else ''} |")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
