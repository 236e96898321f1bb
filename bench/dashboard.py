"""Timing of the console dashboard's figures (`models.dashboard`) on a big SQLite database.

Run by hand, never in CI, after `bench/foundation.py --keep` (100,000 partners, 1,000,000 sales):

    python bench/foundation.py --only setup,partners,sales,refresh --keep --out /tmp/big
    python bench/dashboard.py /tmp/big/foundation.db

Works on a copy (`dashboard.db` beside it) to which it adds, once, what the foundation has not:
chat accounts for 70% of the partners (telegram, wechat, wecom), 300,000 points entries over two
months, 200,000 pushes of the last day and 5,000 redemptions. Then it times each function
(best and median of `--runs` calls, each in a fresh session) at `now` = 2026-11-28 12:00 Shanghai.
"""

from __future__ import annotations

import argparse
import random
import shutil
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import func, select, text  # noqa: E402
from sqlmodel import Session  # noqa: E402

from bot.migrate import upgrade  # noqa: E402
from models import dashboard  # noqa: E402
from models.db import make_engine, table_of  # noqa: E402
from models.tables import ChatIdentity, Contest, Outbox, Partner, PointsEntry, Redemption, RewardItem  # noqa: E402

NOW = datetime(2026, 11, 28, 4, 0, tzinfo=UTC)
TZ = "Asia/Shanghai"


def enrich(engine, seed: int = 7) -> None:  # type: ignore[no-untyped-def]
    rng = random.Random(seed)
    with engine.begin() as conn:
        if conn.execute(select(func.count()).select_from(ChatIdentity)).scalar_one():
            return
        ids = list(conn.execute(select(Partner.id)).scalars())
        naive = NOW
        idents = []
        for pid in ids:
            if rng.random() < 0.7:
                platform = rng.choice(("telegram", "wechat", "wechat", "wecom"))
                idents.append({"partner_id": pid, "platform": platform, "user_ref": f"u{pid}", "chat_ref": f"c{pid}",
                               "active": rng.random() > 0.03, "bound_at": naive - timedelta(days=30),
                               "window_pushes": 0})
        conn.execute(table_of(ChatIdentity).insert(), idents)
        entries = [{"partner_id": rng.choice(ids), "kind": k, "amount": a, "reason": {}, "source_key": f"b{i}",
                    "created_at": naive - timedelta(seconds=rng.randrange(60 * 86400))}
                   for i in range(300_000)
                   for k, a in [rng.choice((("earned", 100), ("earned", 50), ("spent", -80), ("adjusted", 10)))]]
        conn.execute(table_of(PointsEntry).insert(), entries)
        conn.execute(table_of(RewardItem).insert(), [{"sku": "B1", "name_zh": "杯", "name_en": "cup", "points": 80,
                                                      "stock": 100, "active": True, "updated_at": naive}])
        item = conn.execute(select(RewardItem.id)).scalar_one()
        conn.execute(table_of(Redemption).insert(), [
            {"partner_id": rng.choice(ids), "item_id": item, "points": 80,
             "status": rng.choice(("pending", "approved", "approved")), "created_at": naive} for _ in range(5_000)])
        statuses = ("sent",) * 90 + ("failed",) * 4 + ("blocked",) * 2 + ("undeliverable",) * 2 + ("pending",) * 2
        rows = [{"key": f"k{i}", "kind": "broadcast", "platform": rng.choice(("telegram", "wechat", "wecom")),
                 "chat_ref": "c", "is_group": False, "payload": {}, "status": rng.choice(statuses), "attempts": 1,
                 "next_attempt_at": naive, "created_at": naive - timedelta(seconds=rng.randrange(40 * 3600)),
                 "last_error": None} for i in range(200_000)]
        conn.execute(table_of(Outbox).insert(), rows)
        conn.execute(table_of(Contest).insert(), [{  # for `warnings`: December has no targets
            "name": "11月达成", "metric": "attainment", "scope": "individual", "team_score": "sum",
            "start_at": datetime(2026, 10, 31, 16, tzinfo=UTC), "end_at": datetime(2026, 11, 30, 16, tzinfo=UTC),
            "timezone": TZ, "grace_seconds": 0, "segment": {}, "prizes": [], "tiers": [], "top_n": 10,
            "recur": "monthly", "created_at": naive, "standings_dirty": True, "min_ratings": 3, "featured": False}])
        conn.execute(text("ANALYZE"))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("db", type=Path)
    p.add_argument("--runs", type=int, default=7)
    a = p.parse_args()
    copy = a.db.with_name("dashboard.db")
    if not copy.exists():
        shutil.copy(a.db, copy)
    engine = make_engine(f"sqlite:///{copy}")
    upgrade(engine)  # this branch's migrations (the dashboard's indexes)
    enrich(engine)
    calls = {
        "contest_figures": lambda s: dashboard.contest_figures(s, now=NOW),
        "partner_figures": lambda s: dashboard.partner_figures(s, now=NOW),
        "points_figures": lambda s: dashboard.points_figures(s, now=NOW, timezone=TZ),
        "delivery_figures": lambda s: dashboard.delivery_figures(s, now=NOW, channels=("telegram", "wechat")),
        "sales_figures": lambda s: dashboard.sales_figures(s, now=NOW, timezone=TZ),
        "warnings": lambda s: dashboard.warnings(s, now=NOW, channels=("telegram", "wechat"),
                                                 wechat_official_account=True, wechat_template=False),
        "warnings (deliveries given)": lambda s: dashboard.warnings(s, now=NOW, channels=("telegram", "wechat"),
                                                                    wechat_official_account=True, deliveries=()),
    }
    print(f"| function | best ms | median ms |  ({copy})")
    for name, call in calls.items():
        times = []
        for _ in range(a.runs):
            with Session(engine) as s:
                t0 = time.perf_counter()
                call(s)
                times.append((time.perf_counter() - t0) * 1000)
        print(f"| {name} | {min(times):.1f} | {statistics.median(times):.1f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
