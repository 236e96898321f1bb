"""Benchmark of the admin console over HTTP: the dashboard and the partner pages on a big program,
and a 1,000,000-row sales upload.

Run by hand, never in CI:

    python bench/console.py                          # builds bench/out/console/console.db once, then measures
    python bench/console.py --db /tmp/c/console.db   # reuse (or build) the database at that path
    python bench/console.py --requests 50 --no-upload   # quicker
    python bench/console.py --partners 5000 --teams 100 --sales 50000   # a small program (its own files)

The database (built once and kept; `--rebuild` builds it again): `bench/generate.py`'s 100,000
partners in 2,000 teams and 1,000,000 sales, generated for the *current* month in Asia/Shanghai with
their times squeezed into [the month's first day, now) so that the dashboard's month figures and
its chart count every one of them; then `bench/foundation.py`'s own steps (each a child process):
`setup` (the schema and a revenue contest running this month, with prizes and three tiers),
`partners` (partners and this month's targets), `sales`, `refresh` (the standings). On top, once:
an admin (ADMIN1), chat accounts for 70% of the partners (telegram, wechat, wecom; 3% inactive),
300,000 points entries over two months, 5,000 redemptions, 200,000 pushes in the last 40 hours,
then ANALYZE.

Each run copies it (`run.db` beside it: the upload adds sales), starts a real `mianzi serve` on
the copy (MIANZI_CORE_PROCESS as the default decides, MIANZI_PUBLIC_URL set), signs in as an admin
would (`mianzi admin link ADMIN1 --json`, GET the link, POST /admin/signin), and with httpx, one
request at a time, round after round (so a busy moment of the shared machine falls on all of them):

  dashboard          GET /admin/
  partners filtered  GET /admin/partners?team=T0042&bound=no
  partners search    GET /admin/partners?q=伙伴0123    (part of a name: 100 partners match)
  partner page       GET /admin/partners/P0xxxxx      (a random partner of the round)
  healthz            GET /healthz of the same server (the anchor: the same process, client and network
                     path, with no page, no session and no query but the health check's)
  bare page          GET / of a bare Starlette + uvicorn app rendering a small jinja2 page (50 rows)
                     in its own process (`bench/anchors.py page`): the floor of a rendered page

Then (unless --no-upload) one upload of a 1,000,000-row sales file (the same partners, new ids,
this month) through the console: POST /admin/imports (multipart, the CSRF token read from a page),
poll the job's fragment (HX-Request) every 0.5 s until it is done, POST …/commit and poll again;
meanwhile /healthz every 50 ms, whose latency shows whether the server keeps answering (it says
`busy` after waiting 1 s while the import holds SQLite's write lock), and a partner's page every
0.2 s (a read, signed in).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import random
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
from machine import cpu_model

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DEFAULT_DB = HERE / "out" / "console" / "console.db"
TZ = ZoneInfo("Asia/Shanghai")
TARGET_P95_MS = 300.0
ADMIN = "ADMIN1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def mem_gib() -> str:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                return f"{int(line.split()[1]) / 2**20:.0f} GiB"
    except OSError:
        pass
    return "?"


def machine_line() -> str:
    return (f"{os.cpu_count()} cores · {cpu_model()} · {mem_gib()} · Python {platform.python_version()} · "
            f"SQLite {sqlite3.sqlite_version} · {platform.system()} {platform.release()}")


# --- the database --------------------------------------------------------------------------------


def squeeze(src: Path, dst: Path, first: date, now_local: datetime, upload: Path) -> None:
    """sales.csv with its times mapped (in order) from the whole month onto [first day, now - 10 min),
    and the upload file: the same rows with new ids (U… instead of S…)."""
    start = datetime.combine(first, datetime.min.time())
    nxt = date(first.year + first.month // 12, first.month % 12 + 1, 1)
    span = (datetime.combine(nxt, datetime.min.time()) - start).total_seconds()
    room = (now_local.replace(tzinfo=None) - timedelta(minutes=10) - start).total_seconds()
    if room <= 0:
        raise SystemExit("too early in the month: run it ten minutes later")
    scale = room / span
    with src.open(encoding="utf-8", newline="") as f, dst.open("w", encoding="utf-8", newline="") as g, \
            upload.open("w", encoding="utf-8", newline="") as u:
        reader = csv.reader(f)
        w, wu = csv.writer(g, lineterminator="\n"), csv.writer(u, lineterminator="\n")
        head = next(reader)
        w.writerow(head)
        wu.writerow(head)
        batch: list[list[str]] = []
        for ext_id, partner, occurred, *rest in reader:
            t = start + timedelta(seconds=int((datetime.fromisoformat(occurred) - start).total_seconds() * scale))
            batch.append([ext_id, partner, t.isoformat(), *rest])
            if len(batch) == 10_000:
                w.writerows(batch)
                wu.writerows(["U" + r[0][1:], *r[1:]] for r in batch)
                batch = []
        w.writerows(batch)
        wu.writerows(["U" + r[0][1:], *r[1:]] for r in batch)


# what the delivery worker records on the pushes that did not go (as the platforms word it)
ERRORS = ("UPDATE outbox SET last_error = CASE status WHEN 'failed' THEN 'Bad Request: chat not found'"
          " WHEN 'blocked' THEN 'Forbidden: bot was blocked by the user'"
          " WHEN 'undeliverable' THEN '45015: response out of time limit'"
          " WHEN 'pending' THEN 'Too Many Requests: retry after 3' END WHERE status != 'sent'")


def enrich(db: Path, now: datetime, seed: int = 7) -> None:
    """What the foundation has not: chat accounts, a points ledger, redemptions, pushes, ANALYZE.
    Times are naive UTC, as the tables store them."""
    rng = random.Random(seed)
    naive = now.astimezone(UTC).replace(tzinfo=None)
    stamp = lambda t: t.strftime("%Y-%m-%d %H:%M:%S.%f")  # noqa: E731
    with sqlite3.connect(db) as conn:
        ids = [i for (i,) in conn.execute("SELECT id FROM partner WHERE role != 'admin'")]
        idents = []
        for pid in ids:
            if rng.random() < 0.7:
                seen = naive - timedelta(seconds=rng.randrange(20 * 86400))
                idents.append((pid, rng.choice(("telegram", "wechat", "wechat", "wecom")), f"u{pid}", f"c{pid}",
                               int(rng.random() > 0.03), stamp(naive - timedelta(days=30)), stamp(seen)))
        conn.executemany("INSERT INTO chatidentity (partner_id, platform, user_ref, chat_ref, active, bound_at,"
                         " last_seen_at, window_pushes) VALUES (?, ?, ?, ?, ?, ?, ?, 0)", idents)
        kinds = (("earned", 100), ("earned", 50), ("spent", -80), ("adjusted", 10))
        conn.executemany("INSERT INTO pointsentry (partner_id, kind, amount, reason, source_key, created_at)"
                         " VALUES (?, ?, ?, '{}', ?, ?)",
                         ((rng.choice(ids), *rng.choice(kinds), f"b{i}",
                           stamp(naive - timedelta(seconds=rng.randrange(60 * 86400)))) for i in range(300_000)))
        conn.execute("INSERT INTO rewarditem (sku, name_zh, name_en, points, stock, active, updated_at)"
                     " VALUES ('B1', '杯', 'cup', 80, 100, 1, ?)", (stamp(naive),))
        item = conn.execute("SELECT id FROM rewarditem").fetchone()[0]
        conn.executemany("INSERT INTO redemption (partner_id, item_id, points, status, created_at)"
                         " VALUES (?, ?, 80, ?, ?)",
                         ((rng.choice(ids), item, rng.choice(("pending", "approved", "approved")), stamp(naive))
                          for _ in range(5_000)))
        statuses = ("sent",) * 90 + ("failed",) * 4 + ("blocked",) * 2 + ("undeliverable",) * 2 + ("pending",) * 2
        conn.executemany("INSERT INTO outbox (key, kind, platform, chat_ref, is_group, payload, status, attempts,"
                         " next_attempt_at, created_at) VALUES (?, 'broadcast', ?, 'c', 0, '{}', ?, 1, ?, ?)",
                         ((f"k{i}", rng.choice(("telegram", "wechat", "wecom")), rng.choice(statuses), stamp(naive),
                           stamp(naive - timedelta(seconds=rng.randrange(40 * 3600)))) for i in range(200_000)))
        conn.execute(ERRORS)
        conn.execute("ANALYZE")


def checkpoint(db: Path) -> None:
    """Everything of the write-ahead log into the database file (so that a copy of the file is whole)."""
    with sqlite3.connect(db) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")


def mianzi_env(db: Path, **extra: str) -> dict[str, str]:
    env = {**os.environ, "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost",
           "MIANZI_DATABASE_URL": f"sqlite:///{db}", "MIANZI_TIMEZONE": "Asia/Shanghai"}
    env.update(extra)
    return env


def mianzi(*args: str) -> list[str]:
    return [sys.executable, "-c", "from bot.cli import main; main()", *args]


def build(a: argparse.Namespace, db: Path) -> None:
    work = db.parent
    data = work / "data"
    data.mkdir(parents=True, exist_ok=True)
    now = datetime.now(TZ)
    month = now.strftime("%Y-%m")
    print(f"· building {db} ({a.partners:,} partners, {a.sales:,} sales in {month}) …", flush=True)
    t0 = time.perf_counter()
    subprocess.run([sys.executable, str(HERE / "generate.py"), str(data), "--partners", str(a.partners),
                    "--teams", str(a.teams), "--sales", str(a.sales), "--month", month], check=True)
    raw = data / "sales-month.csv"
    (data / "sales.csv").replace(raw)
    squeeze(raw, data / "sales.csv", date(now.year, now.month, 1), now, data / "upload.csv")
    raw.unlink()
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    admin = data / "admin.csv"
    admin.write_text(f"code,name,role\n{ADMIN},孙经理,admin\n", encoding="utf-8")
    for step in ("setup", "partners", "admin", "sales", "refresh"):
        print(f"  · {step} …", flush=True)
        if step == "admin":  # an admin to sign in as (before the refresh: an import marks the standings stale)
            subprocess.run(mianzi("partners", "import", str(admin)), env=mianzi_env(db), cwd=work, check=True,
                           stdout=subprocess.DEVNULL)
            continue
        subprocess.run([sys.executable, str(HERE / "foundation.py"), "--step", step, "--db", str(db), "--data",
                        str(data)], check=True, cwd=HERE, stdout=subprocess.DEVNULL)
    enrich(db, now)
    checkpoint(db)
    (work / "built.json").write_text(json.dumps({"partners": a.partners, "teams": a.teams, "sales": a.sales,
                                                 "month": month, "built_at": now.isoformat()}) + "\n")
    print(f"  built in {time.perf_counter() - t0:.0f} s", flush=True)


# --- the servers ---------------------------------------------------------------------------------


class Server:
    def __init__(self, cmd: list[str], env: dict[str, str], cwd: Path, port: int, probe: str, log: Path) -> None:
        self.port = port
        self.log = log.open("w")
        self.proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 120
        with httpx.Client(trust_env=False, timeout=5) as c:
            while True:
                if self.proc.poll() is not None:
                    raise SystemExit(f"server exited ({self.proc.returncode}); see {log}")
                try:
                    if c.get(f"http://127.0.0.1:{port}{probe}").status_code < 500:
                        return
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    raise SystemExit(f"server did not start; see {log}")
                time.sleep(0.2)

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()

    def cpu_seconds(self) -> float:
        """User + system CPU of the server and its children (the core process) so far, from /proc."""
        total = 0.0
        tick = os.sysconf("SC_CLK_TCK")
        pids = [self.proc.pid]
        try:
            pids += [int(p) for p in Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text().split()]
        except OSError:
            pass
        for pid in pids:
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                total += (int(fields[11]) + int(fields[12])) / tick
            except (OSError, IndexError, ValueError):
                pass
        return total


def sign_in(client: httpx.Client, db: Path, env: dict[str, str], cwd: Path) -> None:
    out = subprocess.run(mianzi("admin", "link", ADMIN, "--json"), env=env, cwd=cwd, check=True,
                         capture_output=True, text=True).stdout
    url = json.loads(out)["url"]
    page = client.get(url)
    page.raise_for_status()
    token = re.search(r'name="token" value="([^"]+)"', page.text)
    if token is None:
        raise SystemExit("no sign-in button on the link's page")
    done = client.post("/admin/signin", data={"token": token.group(1)})
    if done.status_code != 303:
        raise SystemExit(f"sign-in refused: {done.status_code}")


def csrf_of(client: httpx.Client, path: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', client.get(path).text)
    if found is None:
        raise SystemExit(f"no csrf field on {path}")
    return found.group(1)


# --- measuring -----------------------------------------------------------------------------------


def pct(xs: list[float], p: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, max(0, round(p / 100 * len(s)) - 1))]


def timed_get(client: httpx.Client, url: str) -> tuple[float, int, int]:
    t0 = time.perf_counter()
    r = client.get(url)
    body = r.content
    return (time.perf_counter() - t0) * 1000, r.status_code, len(body)


def pages(a: argparse.Namespace, client: httpx.Client, anchor: httpx.Client, server: Server,
          partners: int) -> dict[str, Any]:
    rng = random.Random(a.seed)
    team = f"T{rng.randrange(1, a.teams + 1):04d}"
    targets = {
        "dashboard": lambda: "/admin/",
        "partners filtered": lambda: f"/admin/partners?team={team}&bound=no",
        "partners search": lambda: "/admin/partners?q=伙伴0123",
        "partner page": lambda: f"/admin/partners/P{rng.randrange(1, partners + 1):06d}",
        "healthz": lambda: "/healthz",
        "bare page": None,
    }
    samples: dict[str, list[float]] = {k: [] for k in targets}
    sizes: dict[str, int] = {}
    cpu: dict[str, float] = dict.fromkeys(targets, 0.0)
    for i in range(a.warmup + a.requests):
        for name, path in targets.items():
            c, url = (anchor, "/") if path is None else (client, path())
            before = server.cpu_seconds() if path is not None else 0.0
            ms, status, size = timed_get(c, url)
            if status != 200:
                raise SystemExit(f"{name}: {url} answered {status}")
            if i >= a.warmup:
                samples[name].append(ms)
                sizes[name] = size
                if path is not None:
                    cpu[name] += server.cpu_seconds() - before
    out = {}
    for name, xs in samples.items():
        out[name] = {"n": len(xs), "p50": pct(xs, 50), "p95": pct(xs, 95), "p99": pct(xs, 99), "max": max(xs),
                     "bytes": sizes.get(name, 0), "cpu_ms": cpu[name] * 1000 / len(xs) if xs else 0.0}
    out["_team"] = team  # type: ignore[assignment]
    return out


class Prober(threading.Thread):
    """GET `path` every `every` s on its own connection (with `cookies`: signed in), recording each
    latency (ms) while running, and what /healthz said of the database (`busy`: an import holds
    SQLite's write lock, and the check waited its 1 s for it)."""

    def __init__(self, base: str, path: str = "/healthz", every: float = 0.05,
                 cookies: httpx.Cookies | None = None) -> None:
        super().__init__(daemon=True)
        self.base, self.path, self.every, self.cookies = base, path, every, cookies
        self.samples: list[float] = []
        self.failures = 0
        self.states: dict[str, int] = {}
        self.halt = threading.Event()

    def run(self) -> None:
        with httpx.Client(base_url=self.base, trust_env=False, timeout=30, cookies=self.cookies) as c:
            while not self.halt.is_set():
                try:
                    t0 = time.perf_counter()
                    r = c.get(self.path)
                    self.samples.append((time.perf_counter() - t0) * 1000)
                    self.failures += r.status_code != 200
                    if self.path == "/healthz":
                        state = str(r.json().get("database"))
                        self.states[state] = self.states.get(state, 0) + 1
                except httpx.HTTPError:
                    self.failures += 1
                self.halt.wait(self.every)

    def stop(self) -> dict[str, Any]:
        self.halt.set()
        self.join()
        xs = self.samples or [float("nan")]
        return {"path": self.path, "n": len(self.samples), "p50": pct(xs, 50), "p99": pct(xs, 99), "max": max(xs),
                "failures": self.failures, "states": self.states}


def follow(client: httpx.Client, job_path: str) -> tuple[str, str, float]:
    """Poll a job's fragment until it has finished; its state, the fragment and the seconds it took."""
    t0 = time.perf_counter()
    while True:
        r = client.get(job_path, headers={"HX-Request": "true"})
        state = re.search(r'data-state="([^"]+)"', r.text)
        if state and state.group(1) in ("done", "failed"):
            return state.group(1), r.text, time.perf_counter() - t0
        time.sleep(0.5)


def upload(client: httpx.Client, base: str, path: Path) -> dict[str, Any]:
    csrf = csrf_of(client, "/admin/imports")
    rows = sum(1 for _ in path.open("rb")) - 1
    result: dict[str, Any] = {"rows": rows, "mib": path.stat().st_size / 2**20, "load_before": load()}
    probe, page = Prober(base), Prober(base, "/admin/partners/P000042", every=0.2, cookies=client.cookies)
    probe.start()
    page.start()
    t0 = time.perf_counter()
    with path.open("rb") as f:
        r = client.post("/admin/imports", data={"kind": "sales", "csrf": csrf},
                        files={"file": (path.name, f, "text/csv")}, timeout=600)
    result["post_s"] = time.perf_counter() - t0
    if r.status_code != 303:
        raise SystemExit(f"upload answered {r.status_code}: {r.text[:500]}")
    job = r.headers["location"]
    state, text, seconds = follow(client, job)
    result["preview_s"] = time.perf_counter() - t0
    result["preview_state"] = state
    result["healthz_preview"] = probe.stop()
    result["page_preview"] = page.stop()
    inserted = re.search(r'data-count="inserted">([^<]+)<', text)
    result["preview_inserted"] = inserted.group(1) if inserted else None
    if state != "done":
        result["error"] = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", text))[:300]
        return result
    csrf = csrf_of(client, job)
    probe, page = Prober(base), Prober(base, "/admin/partners/P000042", every=0.2, cookies=client.cookies)
    probe.start()
    page.start()
    t1 = time.perf_counter()
    r = client.post(f"{job}/commit", data={"csrf": csrf})
    if r.status_code != 303:
        raise SystemExit(f"commit answered {r.status_code}: {r.text[:500]}")
    state, text, _ = follow(client, r.headers["location"])
    result["commit_s"] = time.perf_counter() - t1
    result["commit_state"] = state
    result["healthz_commit"] = probe.stop()
    result["page_commit"] = page.stop()
    result["load_after"] = load()
    return result


# --- report --------------------------------------------------------------------------------------


def report(doc: dict[str, Any]) -> None:
    res = doc["pages"]
    anchor = res["healthz"]["p50"]
    bare = res["bare page"]["p50"]
    print(f"\nMachine: {doc['machine']}")
    print(f"Load average (1, 5, 15 min): before {doc['load_before']} · after the pages {doc['load_after']}")
    print(f"Server: mianzi serve, core process {doc['core_process']}; {doc['requests']} requests each, sequential,"
          f" round-robin, after {doc['warmup']} warm-up rounds; team {res['_team']}\n")
    print("| request | p50 ms | p95 ms | p99 ms | max ms | p50 ÷ healthz | p50 ÷ bare page | server CPU ms |"
          " KiB | p95 < 300 ms |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name, r in res.items():
        if name.startswith("_"):
            continue
        verdict = ("PASS" if r["p95"] < TARGET_P95_MS else "FAIL") if name not in ("healthz", "bare page") else ""
        cpu = f"{r['cpu_ms']:.1f}" if name != "bare page" else ""
        print(f"| {name} | {r['p50']:.1f} | {r['p95']:.1f} | {r['p99']:.1f} | {r['max']:.1f} | "
              f"{r['p50'] / anchor:.1f}× | {r['p50'] / bare:.1f}× | {cpu} | {r['bytes'] / 1024:.0f} | {verdict} |")
    up = doc.get("upload")
    if up:
        print(f"\nUpload of {up['rows']:,} sales rows ({up['mib']:.0f} MiB CSV), load before {up['load_before']},"
              f" after {up.get('load_after', '?')}:")
        print(f"  POST /admin/imports answered in {up['post_s']:.2f} s; preview {up['preview_state']} "
              f"after {up['preview_s']:.1f} s (would add {up.get('preview_inserted')})")
        for phase in ("preview", "commit"):
            if f"healthz_{phase}" not in up:
                continue
            if phase == "commit":
                print(f"  commit {up['commit_state']} after {up['commit_s']:.1f} s "
                      f"({up['rows'] / up['commit_s']:,.0f} rows/s)")
            for h in (up[f"healthz_{phase}"], up.get(f"page_{phase}")):
                if h:
                    states = f" (database: {h['states']})" if h.get("states") else ""
                    print(f"  {h.get('path', '/healthz')} during the {phase}: {h['n']} probes, p50 {h['p50']:.1f} ms,"
                          f" p99 {h['p99']:.1f} ms, max {h['max']:.1f} ms, {h['failures']} failures{states}")
        if "error" in up:
            print(f"  preview failed: {up['error']}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--db", type=Path, default=DEFAULT_DB, help="the big database (built there when missing)")
    p.add_argument("--rebuild", action="store_true")
    p.add_argument("--partners", type=int, default=100_000)
    p.add_argument("--teams", type=int, default=2_000)
    p.add_argument("--sales", type=int, default=1_000_000)
    p.add_argument("--requests", type=int, default=200, help="timed requests of each kind")
    p.add_argument("--warmup", type=int, default=5, help="untimed rounds first")
    p.add_argument("--seed", type=int, default=15)
    p.add_argument("--no-upload", action="store_true")
    p.add_argument("--keep-run-db", action="store_true", help="measure on the built database itself, no copy "
                   "(only with --no-upload: the upload adds a million sales)")
    a = p.parse_args(argv)
    db = a.db.resolve()
    db.parent.mkdir(parents=True, exist_ok=True)
    built = db.parent / "built.json"
    if a.rebuild or not db.exists() or not built.exists():
        build(a, db)
    meta = json.loads(built.read_text())
    if meta["month"] != datetime.now(TZ).strftime("%Y-%m"):
        print(f"warning: the database's sales are of {meta['month']}, not this month: the dashboard's month "
              "figures will be empty (--rebuild)")
    a.teams = meta["teams"]
    # this checkout's migrations (a database built by an older one gains its indexes once, here)
    subprocess.run(mianzi("db", "upgrade"), env=mianzi_env(db), cwd=db.parent, check=True, stdout=subprocess.DEVNULL)
    run = db
    if not a.keep_run_db:
        run = db.with_name("run.db")
        for suffix in ("", "-wal", "-shm"):
            Path(f"{run}{suffix}").unlink(missing_ok=True)
        checkpoint(db)
        shutil.copyfile(db, run)
    work = db.parent
    port, bare_port = free_port(), free_port()
    base = f"http://127.0.0.1:{port}"
    env = mianzi_env(run, MIANZI_PUBLIC_URL=base, MIANZI_MEDIA_DIR=str(work / "media"))
    doc: dict[str, Any] = {"machine": machine_line(), "load_before": load(), "requests": a.requests,
                           "warmup": a.warmup, "partners": meta["partners"], "sales": meta["sales"]}
    server = Server(mianzi("serve", "--port", str(port)), env, work, port, "/healthz", work / "serve.log")
    bare = Server([sys.executable, str(HERE / "anchors.py"), "page", "--port", str(bare_port)], dict(os.environ),
                  HERE, bare_port, "/", work / "bare.log")
    try:
        health = httpx.get(f"{base}/healthz", trust_env=False).json()
        doc["core_process"] = "on" if os.environ.get("MIANZI_CORE_PROCESS", "") not in ("", "0", "false") or (
            len(os.sched_getaffinity(0)) > 1 and "MIANZI_CORE_PROCESS" not in os.environ) else "off"
        doc["health"] = health
        with httpx.Client(base_url=base, trust_env=False, timeout=120) as client, \
                httpx.Client(base_url=f"http://127.0.0.1:{bare_port}", trust_env=False, timeout=30) as anchor:
            sign_in(client, run, env, work)
            doc["pages"] = pages(a, client, anchor, server, meta["partners"])
            doc["load_after"] = load()
            if not a.no_upload:
                doc["upload"] = upload(client, base, work / "data" / "upload.csv")
    finally:
        server.stop()
        bare.stop()
    report(doc)
    (work / "results.json").write_text(json.dumps(doc, indent=1, default=str) + "\n")
    print(f"\n(full figures in {work / 'results.json'}; server log {work / 'serve.log'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
