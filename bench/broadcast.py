"""Benchmark of the delivery worker: a broadcast drained against a fake Bot API with a ceiling.

Run by hand, never in CI:

    python bench/broadcast.py                       # both scenarios at full size
    python bench/broadcast.py --paid 10000 --normal 600   # quicker

Scenarios (issue 5):
  paid     100,000 recipients, fake ceiling 1,000 messages/s (Telegram's paid broadcasts), worker
           set to MIANZI_TELEGRAM_RATE=1000 and MIANZI_DELIVERY_CONCURRENCY=128: sustained
           messages/s and the worker's peak memory;
  normal   3,000 recipients, fake ceiling 30/s, the default settings: share of the ceiling
           achieved and how often the fake answered 429.

The fake (`tests/support/fake_flood.py`) runs in its own process and logs every accepted message; the
worker is `mianzi deliveries drain` in another process on a fresh SQLite file. Sustained rate is
measured from the fake's log over the middle 90% of messages (start-up and the last stragglers
excluded); peak memory is the worker's max RSS (GNU time around the drain process).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from machine import cpu_model

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"


def port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def mianzi(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", "from bot.cli import main; main()", *args], env=env, cwd=OUT,
                          capture_output=True, text=True, check=True)


def program(db: Path, n: int, env: dict[str, str]) -> None:
    """n partners, each bound on Telegram, written straight into a migrated database."""
    db.unlink(missing_ok=True)
    mianzi("db", "upgrade", env=env)
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    with sqlite3.connect(db) as conn:
        conn.executemany("INSERT INTO partner (id, code, name, role, locale, active) VALUES (?, ?, ?, 'dealer', ?, 1)",
                         ((i, f"P{i:06d}", f"伙伴{i}", "zh" if i % 5 else "en") for i in range(1, n + 1)))
        conn.executemany("INSERT INTO chatidentity (partner_id, platform, user_ref, chat_ref, active, bound_at, "
                         "last_seen_at, window_pushes) VALUES (?, 'telegram', ?, ?, 1, ?, ?, 0)",
                         ((i, str(10_000_000 + i), str(10_000_000 + i), now, now) for i in range(1, n + 1)))


def scenario(name: str, recipients: int, ceiling: float, worker_rate: float,
             concurrency: int = 64) -> dict[str, object]:
    OUT.mkdir(parents=True, exist_ok=True)
    db, log = OUT / f"broadcast-{name}.db", OUT / f"broadcast-{name}.log"
    log.unlink(missing_ok=True)
    fake_port = port()
    env = {**os.environ, "MIANZI_DATABASE_URL": f"sqlite:///{db}", "MIANZI_TELEGRAM_TOKEN": "1:BENCH",
           "MIANZI_TELEGRAM_API_URL": f"http://127.0.0.1:{fake_port}/bot", "MIANZI_TELEGRAM_RATE": str(worker_rate),
           "MIANZI_DELIVERY_CONCURRENCY": str(concurrency),
           "NO_PROXY": "127.0.0.1,localhost", "PYTHONPATH": str(ROOT)}
    t0 = time.perf_counter()
    program(db, recipients, env)
    queued = json.loads(mianzi("broadcast", "年终冲刺：本月最后一周，加油！", "--json", env=env).stdout)
    setup = time.perf_counter() - t0
    fake = subprocess.Popen([sys.executable, "-m", "tests.support.fake_flood", "--port", str(fake_port), "--rate",
                             str(ceiling), "--log", str(log)], cwd=ROOT, env=env)
    try:
        time.sleep(1.5)
        rss_file = OUT / f"broadcast-{name}.rss"
        t1 = time.perf_counter()
        drain = subprocess.run(["/usr/bin/time", "-f", "%M", "-o", str(rss_file), sys.executable, "-c",
                                "from bot.cli import main; main()", "deliveries", "drain"],
                               env=env, cwd=OUT, capture_output=True, text=True)
        wall = time.perf_counter() - t1
        peak_kb = int(rss_file.read_text().strip().splitlines()[-1])
    finally:
        fake.terminate()
        fake.wait()
    if drain.returncode != 0:
        raise SystemExit(drain.stderr)
    stats = json.loads(drain.stdout.strip().splitlines()[-1])
    times = sorted(float(line.rsplit("\t", 1)[1]) for line in log.read_text().splitlines() if line)
    lo, hi = int(len(times) * 0.05), int(len(times) * 0.95) - 1
    sustained = (hi - lo) / (times[hi] - times[lo]) if hi > lo else 0.0
    return {"scenario": name, "recipients": recipients, "queued": queued["recipients"], "ceiling": ceiling,
            "delivered": len(times), "sent": stats["sent"], "throttled_429": stats["throttled"],
            "sustained_per_s": round(sustained, 1), "share_of_ceiling": round(sustained / ceiling, 3),
            "drain_wall_s": round(wall, 1), "setup_s": round(setup, 1),
            "worker_peak_mb": round(peak_kb / 1024, 1),
            "429_per_minute": round(stats["throttled"] / (wall / 60), 2) if wall else None}


def machine() -> str:
    cpu = cpu_model()
    return f"{os.cpu_count()} cores, {cpu}, Python {platform.python_version()}, SQLite {sqlite3.sqlite_version}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--paid", type=int, default=100_000, help="recipients at 1,000/s (0 to skip)")
    parser.add_argument("--normal", type=int, default=3_000, help="recipients at 30/s (0 to skip)")
    args = parser.parse_args()
    results = []
    if args.paid:
        results.append(scenario("paid", args.paid, 1000, 1000, concurrency=128))
    if args.normal:
        results.append(scenario("normal", args.normal, 30, 30))
    print(json.dumps(results, indent=2, ensure_ascii=False))
    print(f"\nmachine: {machine()}\n")
    print("| scenario | recipients | ceiling/s | sustained/s | share | 429s | worker peak MB |")
    print("|---|---|---|---|---|---|---|")
    for r in results:
        print(f"| {r['scenario']} | {r['recipients']:,} | {r['ceiling']:g} | {r['sustained_per_s']} | "
              f"{r['share_of_ceiling']:.1%} | {r['throttled_429']} | {r['worker_peak_mb']} |")


if __name__ == "__main__":
    main()
