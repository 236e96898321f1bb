"""Benchmark of the foundation on SQLite (or PostgreSQL): imports, standings lookups, closing a contest.

Run by hand, never in CI:

    python bench/foundation.py                     # full size: 100,000 partners, 1,000,000 sales
    python bench/foundation.py --partners 2000 --teams 40 --sales 20000 --lookups 200   # quick
    python bench/foundation.py --wait-quiet 300    # on a shared machine: wait for a quiet CPU per step
    python bench/foundation.py --only sqlite3,sales  # just these steps, on a copy of the database as it
                                                     # was after `partners` (kept from an earlier run)
    python bench/foundation.py --only sqlite3,cli,sales,refresh,close --against /tmp/old
                                  # `cli` and `close` also run by the code of another checkout (the anchor
                                  # of the same run: `git worktree add --detach /tmp/old <commit>`), each
                                  # on an identical copy of the database, and the ratio printed
    python bench/foundation.py --database-url postgresql+psycopg://postgres@127.0.0.1:5432/bench
                                                   # the same steps on PostgreSQL (its public schema is
                                                   # dropped and rebuilt; --only must include setup,partners)

The data comes from `bench/generate.py` (regenerated when missing or of another size). Every run
starts from a fresh database file in the output directory, and each step runs in its own
subprocess, through the same functions the CLI and the chat handlers call, so each step's peak
memory (max RSS, measured by /usr/bin/time around the subprocess) is its own:

  setup      schema (Alembic) and a monthly revenue contest with prizes and tiers
  partners   `partners import` then `targets import` (each its own transaction)
  sales      `sales import`: open_csv → rows_from_csv → import_sales, committed
  refresh    the standings refresh that `sales import` runs after the rows (handlers.refresh.refresh_dirty)
  sqlite3    the sqlite3 shell's `.import` of the same sales.csv into a bare table: the floor (SQLite)
  copy       psql's `\\copy` of the same sales.csv into a bare table: the floor (PostgreSQL)
  lookups    N random partners' rank, score, gap to the next place and to the next tier, each in
             its own short session (as a chat request), as /rank reads them: handlers.views.place_view
             (the contest's state, the own line and the next place up in one statement)
  top10      N times the public top 10 with names as the bot serves it: handlers.views.public_board_of
             (the standings' version read each time; the board built once per version per process)
  redis      the anchor of lookups and top10: the same scores in a Redis sorted set (127.0.0.1:6379,
             redis-py), N times ZREVRANK + ZSCORE + ZREVRANGE of the place above, and ZREVRANGE 0 9
  cli        `mianzi sales import sales.csv` as a user runs it (its own process: start-up, import and
             standings refresh, committed), timed whole, into a copy of the database as it was after
             `partners`; printed beside the sqlite3 `.import` of the same file and the ratio
  close      contests.close: freeze every result and write the prize ledger, committed
  sales_xlsx `sales import` of the same sales as an Excel sheet (sales.xlsx: typed cells, as Excel
             saves them; written once from sales.csv with openpyxl and kept), into a copy of the
             database as it was after `partners` (SQLite only)

The timed loops of lookups, top10 and redis start after the warm-up and a `gc.freeze()`, as
`mianzi serve` freezes its heap once started.

It prints a summary table, a markdown table for the README, and writes results.json (with
--only, results-only.json and the rows of the steps that ran).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from machine import cpu_model

HERE = Path(__file__).resolve().parent
DEFAULT_OUT = HERE / "out"
SQLITE3 = shutil.which("sqlite3") or "/usr/bin/sqlite3"
GNU_TIME = "/usr/bin/time"
TZ = "Asia/Shanghai"
PRIZES = "1=500,2=300,3=100"
TIERS = "bronze=10000:50,silver=50000:200,gold=100000:500"
CLOSE_AT = "2026-12-01T00:00:00"
LOAD_WARN = 1.0  # a 1-min load average above this (on 2 cores) before a step is reported

STEPS = ("baseline", "setup", "partners", "sqlite3", "copy", "cli", "sales", "refresh", "lookups", "top10", "redis",
         "close", "sales_xlsx")
AGAINST_STEPS = ("cli", "close")  # the steps `--against DIR` also runs with DIR's code
SQLITE_ONLY = ("sqlite3", "cli", "sales_xlsx")  # the floor of SQLite; the CLI and .xlsx imports (database file copies)
POSTGRES_ONLY = ("copy",)  # the floor of PostgreSQL

# Targets of the issue (seconds); rows/s for the import.
TARGET_IMPORT_ROWS_S = 100_000
TARGET_LOOKUP_P99 = 0.005
TARGET_TOP_P99 = 0.005
TARGET_CLOSE = 5.0
TARGET_CLI_RATIO = 3.0  # the whole `sales import` command at most 3× the time of sqlite3 `.import`
TARGET_CLOSE_RATIO = 0.5  # the close at most half the time of the `--against` checkout's


# --- steps (run in a child process) --------------------------------------------------------------


def _engine(a: argparse.Namespace, migrate: bool = False) -> Any:
    from models.db import make_engine

    engine = make_engine(a.database_url or f"sqlite:///{a.db}")
    if migrate:
        from bot.migrate import upgrade

        upgrade(engine)
    return engine


def _contest_id(engine: Any) -> int:
    from sqlalchemy import select

    from models.db import session_scope
    from models.tables import Contest

    with session_scope(engine) as s:
        return s.execute(select(Contest.id).order_by(Contest.id)).scalars().first()


def step_baseline(a: argparse.Namespace) -> dict:
    """The interpreter with the models imported (SQLAlchemy, SQLModel), doing nothing: the memory floor."""
    import models.contests  # noqa: F401
    import models.db  # noqa: F401
    import models.imports.sales  # noqa: F401
    import models.standings  # noqa: F401

    return {}


def step_setup(a: argparse.Namespace) -> dict:
    from models import contests
    from models.db import session_scope
    from models.rules import parse_prizes, parse_tiers
    from models.values import parse_period_bound, zone

    t0 = time.perf_counter()
    engine = _engine(a, migrate=True)
    t_schema = time.perf_counter() - t0
    tz = zone(TZ)
    meta = json.loads((a.data / "meta.json").read_text())
    month = meta["month"]
    from generate import month_bounds

    first, last = month_bounds(month)
    spec = contests.ContestSpec(
        name=f"Revenue {month}", metric="revenue", start_at=parse_period_bound(first.isoformat(), tz, is_end=False),
        end_at=parse_period_bound(last.isoformat(), tz, is_end=True), timezone=TZ,
        prizes=parse_prizes(PRIZES), tiers=parse_tiers(TIERS, "revenue"), top_n=10)
    with session_scope(engine) as s:
        contest = contests.create(s, spec)
    return {"seconds": t_schema, "contest_id": contest.id}


def _import_file(engine: Any, path: Path, required: tuple[str, ...], names: tuple[str, ...], fn: Any,
                 **kw: Any) -> tuple[Any, float]:
    from models import csvfile
    from models.db import session_scope
    from models.imports.records import rows_from_csv

    t0 = time.perf_counter()
    with path.open("rb") as stream, ExitStack() as stack:
        # open_table reads CSV and XLSX (newer); open_csv is a context manager now (it was a plain function).
        opened = getattr(csvfile, "open_table", csvfile.open_csv)(stream, required)
        csv_rows = stack.enter_context(opened) if hasattr(opened, "__enter__") else opened
        with session_scope(engine) as s:
            report = fn(s, rows_from_csv(csv_rows.columns, csv_rows.rows, names), **kw)
    return report, time.perf_counter() - t0


def step_partners(a: argparse.Namespace) -> dict:
    from models.imports.partners import PARTNER_COLUMNS, import_partners
    from models.imports.targets import TARGET_COLUMNS, import_targets

    engine = _engine(a)
    rp, tp = _import_file(engine, a.data / "partners.csv", ("code", "name"), PARTNER_COLUMNS, import_partners,
                          default_locale="zh")
    rt, tt = _import_file(engine, a.data / "targets.csv", TARGET_COLUMNS, TARGET_COLUMNS, import_targets)
    return {"seconds": tp + tt, "partners_seconds": tp, "targets_seconds": tt, "partners": rp.inserted,
            "targets": rt.inserted}


def step_sales(a: argparse.Namespace) -> dict:
    return _sales_from(a, "sales.csv")


def step_sales_xlsx(a: argparse.Namespace) -> dict:
    return _sales_from(a, "sales.xlsx")


def _sales_from(a: argparse.Namespace, name: str) -> dict:
    """The sales file `name` of the data directory imported into the benchmark database."""
    from models.imports.sale_rows import SALE_COLUMNS, SALE_REQUIRED
    from models.imports.sales import import_sales
    from models.values import zone

    engine = _engine(a)
    report, seconds = _import_file(engine, a.data / name, SALE_REQUIRED, SALE_COLUMNS, import_sales,
                                   tz=zone(TZ), progress=lambda n: None)
    return {"seconds": seconds, "rows": report.rows, "inserted": report.inserted,
            "rows_per_s": report.rows / seconds if seconds else 0.0}


def write_sales_xlsx(csv_path: Path, xlsx_path: Path) -> None:
    """sales.csv as Excel would save it: a datetime cell for occurred_at, numbers for the amounts,
    units and ratings, an empty cell for an empty value (openpyxl's write-only mode, ~1 min/million)."""
    import csv
    from datetime import datetime

    import openpyxl

    book = openpyxl.Workbook(write_only=True)
    sheet = book.create_sheet("销售")
    with csv_path.open(encoding="utf-8", newline="") as f:
        reader = csv.reader(f)
        sheet.append(next(reader))
        for ext_id, partner, occurred, *rest in reader:
            cells = [None if not v else (v if kind is None else kind(v)) for v, kind in
                     zip(rest, (float, int, float, None, int), strict=True)]
            sheet.append([ext_id, partner, datetime.fromisoformat(occurred), *cells])
    tmp = xlsx_path.with_suffix(".tmp")
    book.save(tmp)
    tmp.replace(xlsx_path)


def step_refresh(a: argparse.Namespace) -> dict:
    from sqlalchemy import func, select

    from handlers.refresh import refresh_dirty
    from models.db import session_scope
    from models.tables import Standing

    engine = _engine(a)
    t0 = time.perf_counter()
    with session_scope(engine) as s:
        refresh_dirty(s)
    seconds = time.perf_counter() - t0
    with session_scope(engine) as s:
        lines = s.execute(select(func.count()).select_from(Standing)).scalar_one()
    return {"seconds": seconds, "lines": lines}


def _percentiles(samples: list[float]) -> dict:
    xs = sorted(samples)

    def pct(p: float) -> float:
        return xs[min(len(xs) - 1, max(0, round(p / 100 * len(xs)) - 1))]

    return {"n": len(xs), "p50": pct(50), "p90": pct(90), "p99": pct(99), "max": xs[-1],
            "mean": sum(xs) / len(xs)}


def _random_partners(engine: Any, n: int, seed: int) -> list[int]:
    import random

    from sqlalchemy import select

    from models.db import session_scope
    from models.tables import Partner

    with session_scope(engine) as s:
        ids = list(s.execute(select(Partner.id).order_by(Partner.id)).scalars())
    rng = random.Random(seed)
    return [rng.choice(ids) for _ in range(n)]


def _settle() -> None:
    """What `mianzi serve` does once started (`gc.freeze()`): the long-lived objects are left out of
    later collections. Done after the warm-up, in the Mianzi steps and the Redis anchor alike."""
    import gc

    gc.collect()
    gc.freeze()


def step_lookups(a: argparse.Namespace) -> dict:
    """One partner's rank, score, gap to the next place and to the next tier, as /rank reads them
    (`handlers.views.place_view`: the contest's state, the line and the next place up in one statement)."""
    from handlers.views import place_view
    from models.db import session_scope

    engine = _engine(a)
    cid = _contest_id(engine)
    pids = _random_partners(engine, a.lookups + a.warmup, a.seed)

    def one(pid: int) -> tuple:
        with session_scope(engine) as s:
            place = place_view(s, contest_id=cid, partner_id=pid)
        if place is None:
            return (None, None, None, None)
        return (place["rank"], place["score"], place["gap_place"], place["gap_tier"])

    for pid in pids[: a.warmup]:
        one(pid)
    _settle()
    samples = []
    no_rank = 0
    slowest = (0.0, None)
    for pid in pids[a.warmup:]:
        t0 = time.perf_counter()
        rank, _score, gap, _tier_gap = one(pid)
        dt = time.perf_counter() - t0
        samples.append(dt)
        if dt > slowest[0]:
            slowest = (dt, {"partner_id": pid, "rank": rank, "gap": gap})
        no_rank += rank is None
    return {**_percentiles(samples), "slowest": slowest[1], "unranked": no_rank}


def step_top10(a: argparse.Namespace) -> dict:
    """The public top 10 with names as the bot serves it (`handlers.views.public_board_of`): the
    contest's standings version read each time, the board built once per version in this process."""
    from handlers.views import public_board_of
    from models.db import session_scope

    engine = _engine(a)
    cid = _contest_id(engine)

    def one() -> int:
        with session_scope(engine) as s:
            board = public_board_of(s, contest_id=cid)
        assert board is not None
        return len(board[0])

    for _ in range(a.warmup):
        one()
    _settle()
    samples = []
    got = 0
    for _ in range(a.lookups):
        t0 = time.perf_counter()
        got = one()
        samples.append(time.perf_counter() - t0)
    return {**_percentiles(samples), "lines": got}


def step_redis(a: argparse.Namespace) -> dict:
    """The same board in a Redis sorted set: what a leaderboard built on Redis pays per lookup."""
    import redis
    from sqlalchemy import select

    from models.db import session_scope
    from models.tables import Standing

    engine = _engine(a)
    cid = _contest_id(engine)
    with session_scope(engine) as s:
        scores = s.execute(select(Standing.partner_id, Standing.score).where(
            Standing.contest_id == cid, Standing.kind == "partner")).all()
    client = redis.Redis(host="127.0.0.1", port=6379)
    key = f"mianzi-bench:board:{cid}"
    client.delete(key)
    for start in range(0, len(scores), 10_000):
        client.zadd(key, {str(pid): score for pid, score in scores[start:start + 10_000]})
    pids = _random_partners(engine, a.lookups + a.warmup, a.seed)

    def one(pid: int) -> tuple:
        rank = client.zrevrank(key, str(pid))
        score = client.zscore(key, str(pid))
        above = client.zrevrange(key, rank - 1, rank - 1, withscores=True) if rank else []
        return rank, score, above

    try:
        for pid in pids[: a.warmup]:
            one(pid)
        _settle()
        lookups = []
        for pid in pids[a.warmup:]:
            t0 = time.perf_counter()
            one(pid)
            lookups.append(time.perf_counter() - t0)
        tops = []
        for _ in range(a.lookups):
            t0 = time.perf_counter()
            client.zrevrange(key, 0, 9, withscores=True)
            tops.append(time.perf_counter() - t0)
    finally:
        client.delete(key)
    return {"members": len(scores), "lookups": _percentiles(lookups), "top10": _percentiles(tops)}


def step_close(a: argparse.Namespace) -> dict:
    from models import contests
    from models.db import session_scope
    from models.values import parse_datetime_local, zone

    engine = _engine(a)
    cid = _contest_id(engine)
    now = parse_datetime_local(CLOSE_AT, zone(TZ))
    t0 = time.perf_counter()
    with session_scope(engine) as s:
        done = contests.close(s, cid, now)
    seconds = time.perf_counter() - t0
    if done is None:
        raise SystemExit("contest was already closed")
    return {"seconds": seconds, "results": done.results, "points_entries": done.points_entries}


def run_step(a: argparse.Namespace) -> None:
    sys.path.insert(0, str(HERE))
    if a.profile:
        import cProfile
        import pstats

        prof = cProfile.Profile()
        result = prof.runcall(globals()[f"step_{a.step}"], a)
        prof.dump_stats(str(a.profile))
        pstats.Stats(prof, stream=sys.stderr).sort_stats("cumulative").print_stats(35)
    else:
        result = globals()[f"step_{a.step}"](a)
    print("RESULT " + json.dumps(result, default=str), flush=True)


# --- orchestration (the parent process stays small: a child's max RSS includes its parent's RSS up to
# the exec, so the parent never holds data) ------------------------------------------------------------


def _measure(cmd: list[str], cwd: Path | None = None,
             env: dict[str, str] | None = None) -> tuple[dict, float, int | None, float]:
    """Run a command; its RESULT line (if any), wall seconds, max RSS in KiB, and CPU seconds (user + system)."""
    with tempfile.NamedTemporaryFile(prefix="maxrss", suffix=".txt", delete=False) as f:
        rss_file = Path(f.name)
    timed = [GNU_TIME, "-f", "%M %U %S", "-o", str(rss_file), *cmd] if os.path.exists(GNU_TIME) else cmd
    t0 = time.perf_counter()
    proc = subprocess.run(timed, cwd=cwd, stdout=subprocess.PIPE, text=True, env=env)
    wall = time.perf_counter() - t0
    rss, cpu = None, float("nan")
    try:
        kib, user, system = rss_file.read_text().strip().splitlines()[-1].split()
        rss, cpu = int(kib), float(user) + float(system)
    except (OSError, ValueError, IndexError):
        pass
    rss_file.unlink(missing_ok=True)
    if proc.returncode != 0:
        sys.stdout.write(proc.stdout)
        raise SystemExit(f"step failed ({proc.returncode}): {' '.join(cmd)}")
    result: dict = {}
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            result = json.loads(line[7:])
        else:
            print(line)
    return result, wall, rss, cpu


def _child(a: argparse.Namespace, step: str, db: Path, tree: Path | None = None) -> list[str]:
    """The command running `step` in a child process: this checkout's, or `tree`'s (`--against`)."""
    script = tree / "bench" / "foundation.py" if tree else Path(__file__).resolve()
    cmd = [sys.executable, str(script), "--step", step, "--db", str(db), "--data", str(a.out),
           "--lookups", str(a.lookups), "--warmup", str(a.warmup), "--seed", str(a.seed)]
    if a.database_url:
        cmd += ["--database-url", a.database_url]
    if step in a.profile_steps:
        cmd += ["--profile", str(a.out / f"profile_{step}.pstats")]
    return cmd


def _ensure_data(a: argparse.Namespace) -> None:
    wanted = {"partners": a.partners, "teams": a.teams, "sales": a.sales, "month": "2026-11", "seed": a.seed}
    meta_file = a.out / "meta.json"
    have = json.loads(meta_file.read_text()) if meta_file.exists() else None
    files = all((a.out / n).exists() for n in ("partners.csv", "targets.csv", "sales.csv"))
    if have == wanted and files and not a.regenerate:
        print(f"using the data in {a.out}")
        return
    cmd = [sys.executable, str(HERE / "generate.py"), str(a.out), "--partners", str(a.partners),
           "--teams", str(a.teams), "--sales", str(a.sales), "--seed", str(a.seed)]
    subprocess.run(cmd, check=True)


def _ensure_xlsx(a: argparse.Namespace) -> None:
    """sales.xlsx from sales.csv, in a child process, unless the one there was written from this data."""
    stamp = a.out / "sales-xlsx.json"
    xlsx = a.out / "sales.xlsx"
    if xlsx.exists() and stamp.exists() and stamp.read_bytes() == (a.out / "meta.json").read_bytes():
        return
    print("· writing sales.xlsx from sales.csv (once, not timed) …", flush=True)
    code = (f"import sys; sys.path.insert(0, {str(HERE)!r}); from foundation import write_sales_xlsx; "
            f"from pathlib import Path; write_sales_xlsx(Path({str(a.out / 'sales.csv')!r}), Path({str(xlsx)!r}))")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=HERE)
    shutil.copyfile(a.out / "meta.json", stamp)


def _fresh(db: Path) -> None:
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)


def _copy_db(src: Path, dst: Path) -> None:
    _fresh(dst)
    for suffix in ("", "-wal"):
        if Path(f"{src}{suffix}").exists():
            shutil.copyfile(f"{src}{suffix}", f"{dst}{suffix}")


def _snapshot(a: argparse.Namespace) -> tuple[Path, Path]:
    """The database as it was after `partners` (for --only), and the file naming its data."""
    return a.out / "foundation-partners.db", a.out / "foundation-partners.json"


def _save_snapshot(a: argparse.Namespace, db: Path) -> None:
    snap, meta = _snapshot(a)
    _copy_db(db, snap)
    shutil.copyfile(a.out / "meta.json", meta)


def _restore_snapshot(a: argparse.Namespace, db: Path) -> None:
    """Copy the after-`partners` database to `db`, building it first if missing or of other data."""
    snap, meta = _snapshot(a)
    if not (snap.exists() and meta.exists() and meta.read_bytes() == (a.out / "meta.json").read_bytes()):
        print("· building the database up to partners (not timed) …", flush=True)
        _fresh(db)
        for step in ("setup", "partners"):
            _measure(_child(a, step, db), cwd=HERE)
        _save_snapshot(a, db)
    _copy_db(snap, db)


def machine() -> dict:
    cpu = cpu_model()
    import sqlite3

    shell = subprocess.run([SQLITE3, "--version"], capture_output=True, text=True).stdout.split()
    return {"nproc": os.cpu_count(), "cpu": cpu, "python": platform.python_version(),
            "sqlite": sqlite3.sqlite_version, "sqlite3_shell": shell[0] if shell else "?",
            "os": f"{platform.system()} {platform.release()}"}


def _pg_url(a: argparse.Namespace) -> str:
    """libpq's form of the SQLAlchemy URL (psql, psycopg)."""
    return a.database_url.replace("postgresql+psycopg://", "postgresql://", 1)


def _pg_fresh(a: argparse.Namespace) -> None:
    """An empty `public` schema in the PostgreSQL database of --database-url."""
    import psycopg

    with psycopg.connect(_pg_url(a), autocommit=True) as conn:
        conn.execute("DROP SCHEMA IF EXISTS public CASCADE")
        conn.execute("CREATE SCHEMA public")


def _pg_size(a: argparse.Namespace) -> int:
    import psycopg

    with psycopg.connect(_pg_url(a)) as conn:
        return int(conn.execute("SELECT pg_database_size(current_database())").fetchone()[0])


def _pg_version(a: argparse.Namespace) -> str:
    import psycopg

    with psycopg.connect(_pg_url(a)) as conn:
        return str(conn.execute("SHOW server_version").fetchone()[0]).split()[0]


def pg_copy(a: argparse.Namespace) -> tuple[dict, float, int | None]:
    """psql's `\\copy` of sales.csv into a bare table of the same database (typed columns, no keys,
    no indexes): PostgreSQL's floor, as the sqlite3 shell's `.import` is SQLite's."""
    psql = shutil.which("psql") or "/usr/bin/psql"
    url = _pg_url(a)
    table = "bench_copy_sales"
    subprocess.run([psql, url, "-q", "-v", "ON_ERROR_STOP=1", "-c", f"DROP TABLE IF EXISTS {table}", "-c",
                    f"CREATE TABLE {table}(id text, partner text, occurred_at timestamp, amount numeric(14, 2), "
                    "units integer, margin numeric(14, 2), customer text, satisfaction integer)"], check=True)
    copy = f"\\copy {table} FROM '{a.out / 'sales.csv'}' WITH (FORMAT csv, HEADER true)"
    _result, wall, rss, cpu = _measure([psql, url, "-q", "-v", "ON_ERROR_STOP=1", "-c", copy])
    out = subprocess.run([psql, url, "-At", "-c", f"SELECT count(*) FROM {table}"], capture_output=True, text=True,
                         check=True)
    rows = int(out.stdout.strip() or 0)
    subprocess.run([psql, url, "-q", "-c", f"DROP TABLE {table}"], check=True)
    return {"seconds": wall, "rows": rows, "rows_per_s": rows / wall if wall else 0.0, "cpu": cpu}, wall, rss


def sqlite3_import(a: argparse.Namespace) -> tuple[dict, float, int | None]:
    """The sqlite3 shell's own `.import` of sales.csv into a bare table (no keys, no indexes)."""
    db = a.out / "sqlite3_import.db"
    _fresh(db)
    script = a.out / "sqlite3_import.sql"
    script.write_text(
        "CREATE TABLE sales(id TEXT, partner TEXT, occurred_at TEXT, amount REAL, units INTEGER, margin REAL,"
        " customer TEXT, satisfaction INTEGER);\n"
        ".mode csv\n"
        f".import --skip 1 '{a.out / 'sales.csv'}' sales\n", encoding="utf-8")
    _result, wall, rss, cpu = _measure([SQLITE3, "-bail", str(db), f".read '{script}'"])
    out = subprocess.run([SQLITE3, str(db), "SELECT count(*) FROM sales"], capture_output=True, text=True)
    rows = int(out.stdout.strip() or 0)
    _fresh(db)
    script.unlink(missing_ok=True)
    return {"seconds": wall, "rows": rows, "rows_per_s": rows / wall if wall else 0.0, "cpu": cpu}, wall, rss


def _tree_env(tree: Path) -> dict[str, str]:
    """The environment of a child running `tree`'s code: its packages first on the path (this
    venv's editable install of the project comes after PYTHONPATH; the child's working directory
    is never the project root)."""
    return {**os.environ, "PYTHONPATH": str(tree)}


def _tree_heads(tree: Path) -> set[str]:
    """The newest migration revisions of `tree`'s scripts (those no other script revises)."""
    import re

    assignment = re.compile(r"^(revision|down_revision)\s*(?::[^=\n]*)?=\s*(.+?)\s*$", re.MULTILINE)
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in (tree / "migrations" / "versions").glob("*.py"):
        found = dict(assignment.findall(path.read_text(encoding="utf-8")))
        revisions.add(found["revision"].strip("'\""))
        parents.update(part.strip(" '\"") for part in found.get("down_revision", "None").strip("()").split(",")
                       if part.strip(" '\"") not in ("", "None"))
    return revisions - parents


def _as_tree_schema(db: Path, tree: Path) -> None:
    """Bring the database copy `db` down to `tree`'s newest revision when it is at a newer one (a
    snapshot built by this checkout, run `--against` an older commit, whose start-up would refuse
    a revision it does not know), by this checkout's migrations, in a child process (the parent
    stays small)."""
    import sqlite3

    heads = _tree_heads(tree)
    with sqlite3.connect(db) as conn:
        current = {row[0] for row in conn.execute("SELECT version_num FROM alembic_version")}
    if len(heads) != 1 or current == heads or not current <= _tree_heads(HERE.parent):
        return
    code = ("import sys; from alembic import command; from bot.migrate import alembic_config; "
            "from models.db import make_engine; engine = make_engine(sys.argv[1]); cfg = alembic_config()\n"
            "with engine.begin() as conn:\n"
            "    cfg.attributes['connection'] = conn; command.downgrade(cfg, sys.argv[2])\n"
            "engine.dispose()")
    subprocess.run([sys.executable, "-c", code, f"sqlite:///{db}", heads.pop()], check=True, cwd=db.parent)


def cli_import(a: argparse.Namespace, tree: Path) -> dict:
    """`mianzi sales import sales.csv` run by `tree`'s code, timed whole (start-up, import, standings
    refresh, commit), into a copy of the database as it was after `partners` (at `tree`'s revision)."""
    db = a.out / "foundation-cli.db"
    _restore_snapshot(a, db)
    if tree != HERE.parent:
        _as_tree_schema(db, tree)
    env = {**_tree_env(tree), "MIANZI_DATABASE_URL": f"sqlite:///{db}", "MIANZI_TIMEZONE": TZ}
    code = "import sys; from bot.cli import main; sys.argv = ['mianzi', 'sales', 'import', sys.argv[1]]; main()"
    _result, wall, rss, cpu = _measure([sys.executable, "-c", code, str(a.out / "sales.csv")], cwd=a.out, env=env)
    import sqlite3

    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT count(*) FROM sale").fetchone()[0]
        lines = conn.execute("SELECT count(*) FROM standing").fetchone()[0]
    _fresh(db)
    return {"result": {"seconds": wall, "rows": rows, "lines": lines, "rows_per_s": rows / wall if wall else 0.0,
                       "cpu": cpu, "tree": str(tree)}, "wall": wall, "rss": rss}


def _wait_quiet(limit: float, below: float = 0.6) -> None:
    """Wait (at most `limit` seconds) until the 1-min load average falls below `below`: a shared machine."""
    deadline = time.monotonic() + limit
    while os.getloadavg()[0] >= below and time.monotonic() < deadline:
        time.sleep(5)


def orchestrate(a: argparse.Namespace) -> int:
    a.out.mkdir(parents=True, exist_ok=True)
    _ensure_data(a)
    db = a.out / "foundation.db"
    if a.database_url and a.against:
        raise SystemExit("--against compares database files: SQLite only")
    skip = SQLITE_ONLY if a.database_url else POSTGRES_ONLY
    steps = [s for s in STEPS if (not a.only or s in a.only) and s not in skip]
    if a.database_url:
        if a.only and not {"setup", "partners"} <= a.only and set(steps) - {"baseline", "copy"}:
            raise SystemExit("on PostgreSQL, --only runs from an empty database: include setup,partners")
        _pg_fresh(a)
    else:
        _fresh(db)
        if a.only and not {"setup", "partners"} & a.only and set(steps) - {"baseline", "sqlite3", "sales_xlsx", "cli"}:
            _restore_snapshot(a, db)
    results: dict[str, dict] = {}
    busy = []
    for step in steps:
        if a.wait_quiet:
            _wait_quiet(a.wait_quiet)
        load = os.getloadavg()[0]
        print(f"· {step} … (load average {load:.2f})", flush=True)
        if load > LOAD_WARN:
            busy.append(f"{step} ({load:.1f})")
        if step == "sqlite3":
            res, wall, rss = sqlite3_import(a)
        elif step == "cli":
            if a.against:
                old = cli_import(a, a.against)
                results["cli_against"] = {**old["result"], "wall": old["wall"], "load_before": load,
                                          "max_rss_mib": old["rss"] / 1024 if old["rss"] is not None else None}
            res, wall, rss = (r := cli_import(a, HERE.parent))["result"], r["wall"], r["rss"]
        elif step == "close" and a.against:
            before = a.out / "foundation-before-close.db"
            _copy_db(db, before)
            theirs, t_wall, t_rss, t_cpu = _measure(_child(a, step, before, a.against), cwd=a.against / "bench",
                                                     env=_tree_env(a.against))
            results["close_against"] = {**theirs, "wall": t_wall, "cpu": t_cpu,
                                        "max_rss_mib": t_rss / 1024 if t_rss is not None else None,
                                        "load_before": load}
            _fresh(before)
            res, wall, rss, cpu = _measure(_child(a, step, db), cwd=HERE)
            res["cpu"] = cpu
        elif step == "copy":
            res, wall, rss = pg_copy(a)
        elif step == "sales_xlsx":  # the same sales again, into the database as it was before them
            _ensure_xlsx(a)
            xdb = a.out / "foundation-xlsx.db"
            _restore_snapshot(a, xdb)
            res, wall, rss, cpu = _measure(_child(a, step, xdb), cwd=HERE)
            res["cpu"] = cpu
            _fresh(xdb)
        else:
            res, wall, rss, cpu = _measure(_child(a, step, db), cwd=HERE)
            res["cpu"] = cpu
        res["load_before"] = load
        res["wall"] = wall
        res["max_rss_mib"] = rss / 1024 if rss is not None else None
        results[step] = res
        if step == "partners" and not a.database_url:
            _save_snapshot(a, db)
    if a.database_url:
        db_size = _pg_size(a)
        if not a.keep:
            _pg_fresh(a)
    else:
        db_size = sum(Path(f"{db}{s}").stat().st_size for s in ("", "-wal") if Path(f"{db}{s}").exists())
        if not a.keep:
            _fresh(db)
    m = machine()
    m["backend"] = "PostgreSQL" if a.database_url else "SQLite"
    if a.database_url:
        m["postgresql"] = _pg_version(a)
    doc = {"machine": m, "size": {"partners": a.partners, "teams": a.teams, "sales": a.sales},
           "against": str(a.against) if a.against else None,
           "db_bytes": db_size, "busy": busy, "steps": results}
    results_file = a.out / _results_name(a)
    results_file.write_text(json.dumps(doc, indent=2, default=str) + "\n", encoding="utf-8")
    report(doc, a)
    return 0


# --- report ----------------------------------------------------------------------------------------


def _results_name(a: argparse.Namespace) -> str:
    return f"results{'-postgresql' if a.database_url else ''}{'-only' if a.only else ''}.json"


def _ms(x: float) -> str:
    return f"{x * 1000:.2f} ms"


def _s(x: float) -> str:
    return f"{x:.2f} s"


def _mib(r: dict) -> str:
    v = r.get("max_rss_mib")
    return "?" if v is None else f"{v:.0f} MiB"


def rows_for(doc: dict) -> list[tuple[str, str, str, str, str]]:
    """(step, figure, target, verdict, peak memory) lines of the summary, for the steps that ran."""
    st = doc["steps"]
    n = doc["size"]

    def ok(good: bool) -> str:
        return "✅" if good else "❌"

    def sales_row() -> tuple[str, str, str, str, str]:
        sales = st["sales"]
        return (f"sales import ({sales['rows']:,} rows)",
                f"{sales['rows_per_s']:,.0f} rows/s ({_s(sales['seconds'])})", f"≥ {TARGET_IMPORT_ROWS_S:,} rows/s",
                ok(sales["rows_per_s"] >= TARGET_IMPORT_ROWS_S), _mib(sales))

    def xlsx_row() -> tuple[str, str, str, str, str]:
        xl = st["sales_xlsx"]
        return (f"sales import from .xlsx ({xl['rows']:,} rows)",
                f"{xl['rows_per_s']:,.0f} rows/s ({_s(xl['seconds'])})", "", "", _mib(xl))

    def ratio_row() -> tuple[str, str, str, str, str]:
        sales, sq = st["sales"], st["sqlite3"]
        ratio = sq["rows_per_s"] / sales["rows_per_s"] if sales["rows_per_s"] else float("inf")
        return ("sqlite3 .import ÷ sales import", f"{ratio:.1f}× faster", "", "", "")

    def copy_ratio_row() -> tuple[str, str, str, str, str]:
        sales, cp = st["sales"], st["copy"]
        ratio = cp["rows_per_s"] / sales["rows_per_s"] if sales["rows_per_s"] else float("inf")
        out = f"{ratio:.1f}× faster"
        if "refresh" in st:
            whole = sales["rows"] / (sales["seconds"] + st["refresh"]["seconds"])
            out += f" (than import + refresh: {cp['rows_per_s'] / whole:.1f}×)"
        return ("COPY ÷ sales import", out, "", "", "")

    def cli_row() -> tuple[str, str, str, str, str]:
        sales, seconds = st["sales"], st["sales"]["seconds"] + st["refresh"]["seconds"]
        return ("`sales import` as the CLI runs it (import + refresh)",
                f"{sales['rows'] / seconds:,.0f} rows/s ({_s(seconds)})", "", "", "")

    def cli_command_rows() -> list[tuple[str, str, str, str, str]]:
        cli, sq = st["cli"], st["sqlite3"]
        out = [(f"`mianzi sales import` whole command ({cli['rows']:,} rows; import + refresh of "
                f"{cli['lines']:,} lines, one process)",
                f"{cli['rows_per_s']:,.0f} rows/s ({_s(cli['seconds'])})", "", "", _mib(cli))]
        if "cli_against" in st:
            old = st["cli_against"]
            out.append((f"the same command, {Path(old['tree']).name}'s code (anchor)",
                        f"{old['rows_per_s']:,.0f} rows/s ({_s(old['seconds'])})", "", "", _mib(old)))
        ratio = cli["seconds"] / sq["seconds"] if sq["seconds"] else float("inf")
        out.append(("whole command ÷ sqlite3 .import (time)", f"{ratio:.1f}×", f"≤ {TARGET_CLI_RATIO:.0f}×",
                    ok(ratio <= TARGET_CLI_RATIO), ""))
        return out

    def close_against_rows() -> list[tuple[str, str, str, str, str]]:
        cl, old = st["close"], st["close_against"]
        ratio = cl["seconds"] / old["seconds"] if old["seconds"] else float("inf")
        return [(f"close, {Path(doc['against']).name}'s code on the same database (anchor)", _s(old["seconds"]),
                 "", "", _mib(old)),
                ("close ÷ the anchor's close", f"{ratio:.2f}×", f"≤ {TARGET_CLOSE_RATIO}×",
                 ok(ratio <= TARGET_CLOSE_RATIO), "")]

    def lookups_row() -> tuple[str, str, str, str, str]:
        lk = st["lookups"]
        return (f"one partner's rank + score + gap, {lk['n']:,} lookups",
                f"p50 {_ms(lk['p50'])} · p99 {_ms(lk['p99'])} · max {_ms(lk['max'])}", "p99 < 5 ms",
                ok(lk["p99"] < TARGET_LOOKUP_P99), _mib(lk))

    def top_row() -> tuple[str, str, str, str, str]:
        tp = st["top10"]
        return (f"top 10, {tp['n']:,} queries", f"p50 {_ms(tp['p50'])} · p99 {_ms(tp['p99'])} · max {_ms(tp['max'])}",
                "p99 < 5 ms", ok(tp["p99"] < TARGET_TOP_P99), _mib(tp))

    def redis_rows() -> list[tuple[str, str, str, str, str]]:
        rd, lk, tp = st["redis"], st.get("lookups"), st.get("top10")
        out = [(f"Redis sorted set ({rd['members']:,} members): ZREVRANK + ZSCORE + ZREVRANGE (anchor)",
                f"p50 {_ms(rd['lookups']['p50'])} · p99 {_ms(rd['lookups']['p99'])}", "", "", ""),
               ("Redis ZREVRANGE 0 9 (anchor)", f"p50 {_ms(rd['top10']['p50'])} · p99 {_ms(rd['top10']['p99'])}",
                "", "", "")]
        if lk:
            ratio = lk["p99"] / rd["lookups"]["p99"]
            out.append(("lookup p99 ÷ Redis's three calls", f"{ratio:.2f}×", "≤ 1×", ok(ratio <= 1), ""))
        if tp:
            ratio = tp["p99"] / rd["top10"]["p99"]
            out.append(("top 10 p99 ÷ Redis ZREVRANGE", f"{ratio:.2f}×", "≤ 2×", ok(ratio <= 2), ""))
        return out

    def close_row() -> tuple[str, str, str, str, str]:
        cl = st["close"]
        return (f"close ({cl['results']:,} results, {cl['points_entries']:,} ledger entries)", _s(cl["seconds"]),
                "< 5 s", ok(cl["seconds"] < TARGET_CLOSE), _mib(cl))

    rows: list[tuple[tuple[str, ...], Any]] = [
        (("baseline",), lambda: ("Python with models/ imported, idle (floor)", "-", "", "", _mib(st["baseline"]))),
        (("setup",), lambda: ("schema (Alembic) + contest", _s(st["setup"]["seconds"]), "", "", _mib(st["setup"]))),
        (("partners",), lambda: (f"partners import ({n['partners']:,} in {n['teams']:,} teams) + targets import",
                                 f"{_s(st['partners']['partners_seconds'])} + "
                                 f"{_s(st['partners']['targets_seconds'])}", "", "", _mib(st["partners"]))),
        (("sales",), sales_row),
        (("sqlite3",), lambda: ("sqlite3 shell .import, bare table (floor)",
                                f"{st['sqlite3']['rows_per_s']:,.0f} rows/s ({_s(st['sqlite3']['seconds'])})", "", "",
                                _mib(st["sqlite3"]))),
        (("sales", "sqlite3"), ratio_row),
        (("copy",), lambda: ("psql \\copy into a bare table (floor)",
                             f"{st['copy']['rows_per_s']:,.0f} rows/s ({_s(st['copy']['seconds'])})", "", "",
                             _mib(st["copy"]))),
        (("sales", "copy"), copy_ratio_row),
        (("refresh",), lambda: (f"standings refresh after import ({st['refresh']['lines']:,} lines)",
                                _s(st["refresh"]["seconds"]), "", "", _mib(st["refresh"]))),
        (("sales", "refresh"), cli_row),
        (("lookups",), lookups_row),
        (("top10",), top_row),
        (("redis",), redis_rows),
        (("close",), close_row),
        (("close", "close_against"), close_against_rows),
        (("cli", "sqlite3"), cli_command_rows),
        (("sales_xlsx",), xlsx_row),
    ]
    out: list[tuple[str, str, str, str, str]] = []
    for needs, row in rows:
        if all(step in st for step in needs):
            made = row()
            out.extend(made if isinstance(made, list) else [made])
    return out


def machine_line(doc: dict) -> str:
    m = doc["machine"]
    if "postgresql" in m:
        return f"{m['nproc']} cores · {m['cpu']} · Python {m['python']} · PostgreSQL {m['postgresql']} · {m['os']}"
    return (f"{m['nproc']} cores · {m['cpu']} · Python {m['python']} · SQLite {m['sqlite']} "
            f"(shell {m['sqlite3_shell']}) · {m['os']}")


def markdown(doc: dict) -> str:
    head = "| step | figure | target | | peak memory |\n|---|---|---|---|---|\n"
    body = "".join(f"| {' | '.join(r)} |\n" for r in rows_for(doc))
    return f"Machine: {machine_line(doc)}\n\n{head}{body}"


def report(doc: dict, a: argparse.Namespace) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    if not console.is_terminal:
        console = Console(width=150)
    backend = doc["machine"].get("backend", "SQLite")
    table = Table(title=f"Mianzi foundation benchmark · {backend} · {machine_line(doc)}", title_justify="left")
    for col, just in (("step", "left"), ("figure", "right"), ("target", "left"), ("", "center"),
                      ("peak memory", "right")):
        table.add_column(col, justify=just)  # type: ignore[arg-type]
    for r in rows_for(doc):
        table.add_row(*r)
    console.print(table)
    lk = doc["steps"].get("lookups", {})
    console.print(f"slowest lookup: {lk.get('slowest')} · unranked partners in the sample: {lk.get('unranked')}"
                  f" · database {doc['db_bytes'] / 2**20:,.0f} MiB", highlight=False)
    if doc["busy"]:
        console.print(f"[yellow]warning: the machine was busy (1-min load average > {LOAD_WARN}) before: "
                      f"{', '.join(doc['busy'])}; timings may be inflated, run again on a quiet machine[/]")
    print("\nMarkdown:\n")
    print(markdown(doc))
    print(f"(full figures in {a.out / _results_name(a)})")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="Foundation benchmark (SQLite, or PostgreSQL). Run by hand.")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="data and database directory (default bench/out)")
    p.add_argument("--partners", type=int, default=100_000)
    p.add_argument("--teams", type=int, default=2_000)
    p.add_argument("--sales", type=int, default=1_000_000)
    p.add_argument("--lookups", type=int, default=1_000, help="timed lookups and top-10 queries")
    p.add_argument("--warmup", type=int, default=50, help="untimed lookups first (a server's warm pool)")
    p.add_argument("--seed", type=int, default=20261101)
    p.add_argument("--regenerate", action="store_true", help="rewrite the CSV files even if they match")
    p.add_argument("--wait-quiet", type=float, default=0, metavar="SECONDS",
                   help="before each step wait up to SECONDS for the 1-min load average to fall below 0.6")
    p.add_argument("--keep", action="store_true", help="keep bench/out/foundation.db (or the PostgreSQL tables) "
                   "after the run")
    p.add_argument("--database-url", default="", metavar="URL",
                   help="run on this PostgreSQL database instead (postgresql+psycopg://…; its public schema is "
                   "dropped and rebuilt), with psql's \\copy as the import's floor")
    p.add_argument("--only", default="", metavar="STEPS",
                   help=f"comma-separated steps to run ({', '.join(STEPS)}); without setup and partners, on a copy "
                   "of the database as it was after partners (saved by a run that had them, else built first)")
    p.add_argument("--against", type=Path, metavar="DIR",
                   help=f"also run {', '.join(AGAINST_STEPS)} with the code of the checkout DIR (an older commit): "
                   "the anchor of the same run")
    p.add_argument("--profile-steps", default="", help="comma-separated steps to run under cProfile "
                   "(stats to stderr and bench/out/profile_STEP.pstats); timings then include the profiler")
    # internal: one step in a child process
    p.add_argument("--step", choices=STEPS, help=argparse.SUPPRESS)
    p.add_argument("--db", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--profile", type=Path, help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    a.profile_steps = {s.strip() for s in a.profile_steps.split(",") if s.strip()}
    a.only = {s.strip() for s in a.only.split(",") if s.strip()}
    if a.only - set(STEPS):
        p.error(f"unknown steps: {', '.join(sorted(a.only - set(STEPS)))}")
    return a


def main(argv: list[str] | None = None) -> int:
    a = parse_args(argv)
    if a.step:
        run_step(a)
        return 0
    a.out = a.out.resolve()
    if a.against:
        a.against = a.against.resolve()
    return orchestrate(a)


if __name__ == "__main__":
    sys.exit(main())
