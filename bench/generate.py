"""Deterministic generator of a large program for the foundation benchmark (DESIGN §4 CSV formats).

Writes partners.csv, targets.csv and sales.csv for one month (November 2026 by default) into a
directory. The same seed and sizes always give byte-identical files.

    python bench/generate.py                       # 100,000 partners, 2,000 teams, 1,000,000 sales
    python bench/generate.py --partners 2000 --teams 40 --sales 20000 --out /tmp/small

Shape of the data: partners belong to teams of equal size (the first member is the captain); about
one partner in ten sells nothing that month; the others' shares of the sales follow a skewed
(log-normal) distribution, so a few sell a lot. Amounts are log-normal around ¥2,000. Sales are
written in time order (as a monthly export would be); `margin` is empty for about a third of them,
`satisfaction` for about two thirds.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import random
import sys
import time
from datetime import date, datetime, timedelta
from pathlib import Path

DEFAULT_OUT = Path(__file__).resolve().parent / "out"
REGIONS = ("华东", "华南", "华北", "华中", "西南", "西北", "东北")
REGION_WEIGHTS = (30, 22, 18, 10, 10, 5, 5)
INDUSTRIES = ("零售", "制造", "医疗", "教育", "金融", "物流", "餐饮", "建筑")
SIZES = ("small", "medium", "large")
INACTIVE_SHARE = 0.10


def month_bounds(month: str) -> tuple[date, date]:
    """`2026-11` to its first and last day."""
    first = date.fromisoformat(f"{month}-01")
    nxt = date(first.year + first.month // 12, first.month % 12 + 1, 1)
    return first, nxt - timedelta(days=1)


def partner_code(i: int) -> str:
    return f"P{i:06d}"


def generate(out: Path, partners: int, teams: int, sales: int, month: str, seed: int) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    first, last = month_bounds(month)
    per_team = max(1, math.ceil(partners / teams))

    with (out / "partners.csv").open("w", encoding="utf-8", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(("code", "name", "team", "region", "city_tier", "industry", "size", "joined_on", "role",
                    "locale"))
        joined_span = (first - date(2018, 1, 1)).days
        for i in range(1, partners + 1):
            team = (i - 1) // per_team + 1
            joined = date(2018, 1, 1) + timedelta(days=rng.randrange(joined_span))
            w.writerow((partner_code(i), f"伙伴{i:06d}", f"T{team:04d}", rng.choices(REGIONS, REGION_WEIGHTS)[0],
                        rng.choices((1, 2, 3), (20, 35, 45))[0], rng.choice(INDUSTRIES),
                        rng.choices(SIZES, (60, 30, 10))[0], joined.isoformat(),
                        "captain" if (i - 1) % per_team == 0 else "dealer", "en" if rng.random() < 0.05 else "zh"))

    with (out / "targets.csv").open("w", encoding="utf-8", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(("partner", "period_start", "period_end", "target"))
        for i in range(1, partners + 1):
            w.writerow((partner_code(i), first.isoformat(), last.isoformat(), f"{rng.randrange(50, 1000) * 100}.00"))

    # Who sells: a skewed share per partner, zero for the inactive ones.
    weights = [0.0 if rng.random() < INACTIVE_SHARE else rng.lognormvariate(0.0, 1.0) for _ in range(partners)]
    who = rng.choices(range(1, partners + 1), weights=weights, k=sales)
    seconds = (last - first).days * 86400 + 86400
    when = sorted(rng.randrange(seconds) for _ in range(sales))
    start = datetime.combine(first, datetime.min.time())
    with (out / "sales.csv").open("w", encoding="utf-8", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(("id", "partner", "occurred_at", "amount", "units", "margin", "customer", "satisfaction"))
        rows = []
        for n in range(sales):
            fen = min(int(rng.lognormvariate(math.log(200_000), 0.9)), 99_999_999_99) + 1
            margin = "" if rng.random() < 0.33 else _yuan(fen * rng.randrange(5, 35) // 100)
            sat = "" if rng.random() < 0.67 else str(rng.choices((1, 2, 3, 4, 5), (3, 5, 15, 40, 37))[0])
            pid = who[n]
            rows.append((f"S{n + 1:08d}", partner_code(pid), (start + timedelta(seconds=when[n])).isoformat(),
                         _yuan(fen), rng.randrange(1, 50), margin, f"C{pid:06d}-{rng.randrange(40):02d}", sat))
            if len(rows) == 10_000:
                w.writerows(rows)
                rows = []
        w.writerows(rows)

    meta = {"partners": partners, "teams": teams, "sales": sales, "month": month, "seed": seed}
    (out / "meta.json").write_text(json.dumps(meta) + "\n", encoding="utf-8")
    return meta


def _yuan(fen: int) -> str:
    return f"{fen // 100}.{fen % 100:02d}"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out", nargs="?", type=Path, default=DEFAULT_OUT, help="output directory (default bench/out)")
    p.add_argument("--partners", type=int, default=100_000)
    p.add_argument("--teams", type=int, default=2_000)
    p.add_argument("--sales", type=int, default=1_000_000)
    p.add_argument("--month", default="2026-11", help="YYYY-MM of the sales and targets")
    p.add_argument("--seed", type=int, default=20261101)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    a = parse_args(argv)
    if a.partners < 1 or a.teams < 1 or a.teams > a.partners or a.sales < 0:
        print("need partners >= teams >= 1 and sales >= 0", file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    generate(a.out, a.partners, a.teams, a.sales, a.month, a.seed)
    print(f"wrote {a.partners:,} partners in {a.teams:,} teams and {a.sales:,} sales to {a.out} "
          f"in {time.perf_counter() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
