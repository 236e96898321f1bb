"""Benchmark of scale-out: the Telegram webhook with 1, 2 and 3 `mianzi serve` processes on PostgreSQL.

Run by hand, never in CI:

    python bench/scaleout.py                              # 1, 2, 3 processes; 20,000 partners; 15 s each
    python bench/scaleout.py --processes 1,2 --seconds 10
    python bench/scaleout.py --database-url postgresql+psycopg://postgres@127.0.0.1:5432/bench_scaleout

A program like bench/webhook.py's (N partners with one sale each in the running month, one revenue
contest, its standings built, 1,000 partners bound to Telegram users) is written to a fresh
PostgreSQL database (dropped and created again: never point it at data you keep). Then, for each
count K, K `mianzi serve` processes run with the webhook route on, and the load generator (aiohttp,
in this process) sends real `/rank` Update JSON with the secret header to them in turn — a load
balancer's round robin — closed loop, `--concurrency` in flight in all. Each reply goes to the fake
Bot API (`tests/support/fake_flood.py`) in a process of its own; the webhook answers once the reply
was accepted, so a round trip is "POST to the reply reaching the API".

The anchor, in the same run: the bare python-telegram-bot 22 bot (`bench/anchors.py ptb`), one
process, loaded the same way. Printed: the machine, the load average before each step, updates/s,
p50 and p99, the servers' CPU per update (all K processes), the ratio of K processes to one and to
the bare bot, and which process was elected to deliver pushes (one per channel, whatever K).

Everything here — K servers, PostgreSQL, the fake and the load generator — shares the machine's
cores, so on two cores a second process adds little: the figure that says what one more machine
adds is the servers' CPU per update (a two-core machine of its own serves about 2 / that many
updates a second, PostgreSQL permitting).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import subprocess
import sys
import time
from datetime import UTC, datetime

from machine import cpu_model
from sqlalchemy import create_engine, insert, text
from sqlalchemy.engine import make_url
from webhook import OUT, ROOT, SECRET, USERS, cpu_seconds, load, port, start_anchor, wait_for

DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/bench_scaleout"


def recreate(url: str) -> None:
    """Drop and create the benchmark's database (connected to the server's `postgres` database)."""
    target = make_url(url)
    admin = create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{target.database}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{target.database}"'))
    admin.dispose()


def build(url: str, n: int, env: dict[str, str]) -> None:
    """The program of bench/webhook.py, on PostgreSQL, through the tables."""
    recreate(url)
    subprocess.run([sys.executable, "-c", "from bot.cli import main; main()", "db", "upgrade"], env=env, cwd=OUT,
                   check=True, capture_output=True)
    from models.tables import ChatIdentity, Contest, Partner, Sale

    now = datetime.now(UTC)
    month = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(insert(Partner), [{"id": i, "code": f"P{i:06d}", "name": f"伙伴{i}", "role": "dealer",
                                        "locale": "zh", "active": True, "city_tier": 1,
                                        "joined_on": datetime(2020, 1, 1).date()} for i in range(1, n + 1)])
        conn.execute(text("SELECT setval(pg_get_serial_sequence('partner', 'id'), :n)"), {"n": n})
        conn.execute(insert(Sale), [{"ext_id": f"S{i}", "partner_id": i, "occurred_at": now,
                                     "amount_fen": (i * 7919) % 10_000_000 + 100, "units": 1, "imported_at": now}
                                    for i in range(1, n + 1)])
        conn.execute(insert(ChatIdentity), [{"partner_id": i, "platform": "telegram", "user_ref": str(7_000_000 + i),
                                             "chat_ref": str(7_000_000 + i), "active": True, "bound_at": now,
                                             "last_seen_at": now, "window_pushes": 0} for i in range(1, USERS + 1)])
        conn.execute(insert(Contest), [{"name": "本月销售冠军", "metric": "revenue", "scope": "individual",
                                        "team_score": "sum", "start_at": month,
                                        "end_at": datetime(2099, 1, 1, tzinfo=UTC),
                                        "timezone": "Asia/Shanghai", "grace_seconds": 0, "segment": {},
                                        "prizes": [{"rank": 1, "points": 500}],
                                        "tiers": [{"name": "gold", "threshold": 5_000_000, "points": 100}],
                                        "top_n": 10, "recur": "none", "created_at": now, "standings_dirty": True}])
    engine.dispose()
    code = ("from bot import context; from models.db import session_scope; from models import standings;"
            "e = context.engine();\nwith session_scope(e) as s: standings.refresh(s, 1)")
    subprocess.run([sys.executable, "-c", code], env=env, cwd=OUT, check=True)


def health(server_port: int) -> dict[str, object]:
    import urllib.request

    with urllib.request.urlopen(f"http://127.0.0.1:{server_port}/healthz", timeout=5) as answer:  # noqa: S310
        doc: dict[str, object] = json.loads(answer.read())
        return doc


def step(servers: list[tuple[subprocess.Popen[bytes], int]], args: argparse.Namespace, *, mianzi: bool) -> dict:
    """Warm up, then load the servers; their figures (CPU of all their processes)."""
    for proc, server_port in servers:
        wait_for(server_port, proc)
    time.sleep(1.5)
    urls = [f"http://127.0.0.1:{p}/telegram/webhook" for _proc, p in servers]
    asyncio.run(load(urls, 2, 4))  # warm-up: every server's connections and caches
    deliverers = ([p for _proc, p in servers if "telegram" in health(p).get("delivering_for", [])]  # type: ignore[operator]
                  if mianzi else [])
    load_before = os.getloadavg()[0]
    cpu0 = sum(cpu_seconds(proc.pid) for proc, _p in servers)
    latencies, errors, wall = asyncio.run(load(urls, args.seconds, args.concurrency))
    server_cpu = sum(cpu_seconds(proc.pid) for proc, _p in servers) - cpu0
    latencies.sort()
    p = lambda q: round(latencies[min(int(len(latencies) * q), len(latencies) - 1)] * 1000, 1)  # noqa: E731
    return {"processes": len(servers), "updates": len(latencies), "errors": errors,
            "updates_per_s": round(len(latencies) / wall, 1), "p50_ms": p(0.50), "p99_ms": p(0.99),
            "load_before": round(load_before, 2), "deliverers": len(deliverers),
            "server_cpu_ms_per_update": round(server_cpu * 1000 / max(len(latencies), 1), 2)}


def stop(servers: list[tuple[subprocess.Popen[bytes], int]]) -> None:
    for proc, _p in servers:
        proc.terminate()
    for proc, _p in servers:
        proc.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", default=DEFAULT_URL, help="a PostgreSQL database to drop and fill")
    parser.add_argument("--partners", type=int, default=20_000)
    parser.add_argument("--processes", default="1,2,3", help="the counts of serve processes to run, in turn")
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--concurrency", type=int, default=32, help="senders waiting for answers, in all")
    parser.add_argument("--core", choices=["auto", "process", "thread"], default="auto",
                        help="where chat answers run: MIANZI_CORE_PROCESS unset (the default), on or off")
    parser.add_argument("--no-anchor", action="store_true", help="skip the bare python-telegram-bot anchor")
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    fake_port = port()
    env = {**os.environ, "MIANZI_DATABASE_URL": args.database_url, "MIANZI_TELEGRAM_TOKEN": "1:BENCH",
           "MIANZI_TELEGRAM_API_URL": f"http://127.0.0.1:{fake_port}/bot", "MIANZI_TELEGRAM_SECRET": SECRET,
           "MIANZI_TELEGRAM_WEBHOOK_URL": "http://127.0.0.1:1/telegram/webhook",
           "MIANZI_SCHEDULER_TICK_SECONDS": "3600",
           "NO_PROXY": "127.0.0.1,localhost", "PYTHONPATH": str(ROOT)}
    env.pop("MIANZI_CORE_PROCESS", None)  # default settings (off on PostgreSQL)
    if args.core != "auto":
        env["MIANZI_CORE_PROCESS"] = "1" if args.core == "process" else "0"
    build(args.database_url, args.partners, env)
    fake = subprocess.Popen([sys.executable, "-m", "tests.support.fake_flood", "--port", str(fake_port),
                             "--rate", "1000000"], cwd=ROOT, env=env)
    results: list[dict] = []
    try:
        for count in [int(c) for c in args.processes.split(",")]:
            servers = []
            log = (OUT / "scaleout-serve.log").open("a")
            for _ in range(count):
                server_port = port()
                proc = subprocess.Popen([sys.executable, "-c", "from bot.cli import main; main()", "serve", "--port",
                                         str(server_port)], cwd=OUT, env=env, stdout=subprocess.DEVNULL, stderr=log)
                servers.append((proc, server_port))
            try:
                results.append({"server": f"Mianzi × {count}", **step(servers, args, mianzi=True)})
            finally:
                stop(servers)
                log.close()
        if not args.no_anchor:
            anchor, anchor_port = start_anchor(env, "scaleout-anchor.log")
            try:
                results.append({"server": "bare PTB × 1", **step([(anchor, anchor_port)], args, mianzi=False)})
            finally:
                stop([(anchor, anchor_port)])
    finally:
        fake.terminate()
        fake.wait()
    print(json.dumps({"partners": args.partners, "concurrency": args.concurrency, "results": results}, indent=2))
    print(f"\nmachine: {os.cpu_count()} cores, {cpu_model()}, Python {platform.python_version()}, PostgreSQL "
          f"on the same machine\n")
    print("| server | load avg before | updates/s | p50 | p99 | servers' CPU per update | deliverers |")
    print("|---|---|---|---|---|---|---|")
    for r in results:
        print(f"| {r['server']} | {r['load_before']} | {r['updates_per_s']} | {r['p50_ms']} ms | {r['p99_ms']} ms | "
              f"{r['server_cpu_ms_per_update']} ms | {r['deliverers'] if r['server'].startswith('Mianzi') else '—'} |")
    mianzi = [r for r in results if r["server"].startswith("Mianzi")]
    anchor = next((r for r in results if r["server"].startswith("bare")), None)
    if mianzi:
        one = mianzi[0]
        for r in mianzi:
            line = f"{r['server']}: {r['updates_per_s'] / max(one['updates_per_s'], 0.1):.2f}× {one['server']}"
            if anchor:
                line += f", {r['updates_per_s'] / max(anchor['updates_per_s'], 0.1):.2f}× bare PTB"
            per_machine = 2000 / max(r["server_cpu_ms_per_update"], 0.01)
            print(line + f"; a 2-core machine of its own would serve ≈ {per_machine:.0f} updates/s at this CPU cost")


if __name__ == "__main__":
    main()
