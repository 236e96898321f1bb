"""Benchmark of the command line's start-up: `mianzi` commands timed as whole processes.

Run by hand, never in CI:

    python bench/cli.py             # 15 runs of each command (2 warm-up runs not counted)
    python bench/cli.py --runs 30
    python bench/cli.py --against /tmp/before   # and a checkout of an older revision, in the same rounds

Each command is started as an operator starts it (the `mianzi` console script beside this
Python, or `python -c "from bot.cli import main; main()"` without one) and timed from its start
to its exit with `time.perf_counter`: interpreter start-up, imports, opening the database, the
query and the printing. The commands, in turn, run after run (so a drift of the machine's speed
touches each alike):

  help      `mianzi --help`
  list      `mianzi contests list` on a small SQLite program (3 contests, 20 partners)
  invite    `mianzi partners invite P001` (a fresh invite code written each run)

and, in the same rounds, the anchors: `python -c pass` (the interpreter alone),
`python -c "import typer"` (the CLI library alone, no command) and `python -c "import
models.tables"` (SQLAlchemy, SQLModel, pydantic and the table classes: what a command
that reads through the ORM imports; `contests list` reads through the driver's own connection,
`models.plain`) and, when the `sqlite3` shell is installed, the list's query run by it on the
same database file. Printed: the machine (CPU model,
cores, Python), the 1-minute load average before and after, and min / median / max per command;
quote the median.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from machine import cpu_model

ROOT = Path(__file__).resolve().parent.parent


def machine() -> str:
    return f"{cpu_model()} · {os.cpu_count()} cores · Python {platform.python_version()} · {platform.system()}"


def load() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "?"


def mianzi_cmd() -> list[str]:
    script = Path(sys.executable).parent / "mianzi"
    return [str(script)] if script.is_file() else [sys.executable, "-c", "from bot.cli import main; main()"]


def setup(env: dict[str, str], work: Path) -> None:
    """A small program: 20 partners, 3 contests."""
    cli = mianzi_cmd()
    partners = work / "partners.csv"
    partners.write_text("code,name\n" + "".join(f"P{i:03d},伙伴{i}\n" for i in range(1, 21)), encoding="utf-8")
    steps = [["db", "upgrade"], ["partners", "import", str(partners)]]
    for n, (start, end) in enumerate((("2026-11-01", "2026-11-30"), ("2026-12-01", "2026-12-31"),
                                      ("2027-01-01", "2027-01-31")), start=1):
        steps.append(["contests", "create", "--name", f"月度冠军{n}", "--metric", "revenue",
                      "--start", start, "--end", end, "--prizes", "1=500,2=300,3=100"])
    for args in steps:
        subprocess.run([*cli, *args], env=env, cwd=work, check=True, capture_output=True)


def timed(cmd: list[str], env: dict[str, str], cwd: Path) -> float:
    start = time.perf_counter()
    done = subprocess.run(cmd, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} exited {done.returncode}: {done.stderr.decode()[-500:]}")
    return wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--against", type=Path, metavar="DIR",
                        help="a checkout of another revision (git worktree add DIR REV): its commands run in the "
                             "same rounds, on a database of their own, for a before/after in one run")
    a = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="mianzi-bench-cli-"))
    cli = mianzi_cmd()
    trees = {"": ROOT, **({f" ({a.against.name})": a.against.resolve()} if a.against else {})}
    envs: dict[str, dict[str, str]] = {}
    commands: dict[str, tuple[list[str], str]] = {
        "python -c pass": ([sys.executable, "-c", "pass"], ""),
        'python -c "import typer"': ([sys.executable, "-c", "import typer"], ""),
        'python -c "import models.tables"': ([sys.executable, "-c", "import models.tables"], ""),
    }
    sqlite3_shell = shutil.which("sqlite3")
    if sqlite3_shell:  # the same rows straight from the database file, by SQLite's own shell
        commands["sqlite3 shell, the same query"] = (
            [sqlite3_shell, str(work / "0.db"), "SELECT id, name, metric, scope, start_at, end_at, timezone, "
             "closed_at, cancelled_at FROM contest ORDER BY start_at, id"], "")
    for n, (label, tree) in enumerate(trees.items()):
        envs[label] = {**os.environ, "PYTHONPATH": str(tree), "MIANZI_DATABASE_URL": f"sqlite:///{work / f'{n}.db'}"}
        envs[label].pop("PYTHONDONTWRITEBYTECODE", None)
        for name, args in (("mianzi --help", ["--help"]), ("mianzi contests list", ["contests", "list"]),
                           ("mianzi partners invite P001", ["partners", "invite", "P001"])):
            commands[name + label] = ([*cli, *args], label)
    try:
        for label in trees:
            setup(envs[label], work)
        load_before = load()
        samples: dict[str, list[float]] = {name: [] for name in commands}
        for round_ in range(a.warmup + a.runs):
            for name, (cmd, label) in commands.items():
                wall = timed(cmd, envs[label], work)
                if round_ >= a.warmup:
                    samples[name].append(wall)
        load_after = load()
    finally:
        shutil.rmtree(work, ignore_errors=True)

    print(f"machine: {machine()}")
    print(f"load average (1, 5, 15 min): before {load_before} · after {load_after}")
    print(f"{a.runs} runs each after {a.warmup} warm-up rounds, commands in turn\n")
    print("| command | min | median | max |")
    print("|---|---|---|---|")
    for name, values in samples.items():
        print(f"| `{name}` | {min(values):.3f} s | {statistics.median(values):.3f} s | {max(values):.3f} s |")
    for label in list(trees)[1:]:
        print()
        for name in ("mianzi --help", "mianzi contests list", "mianzi partners invite P001"):
            ratio = statistics.median(samples[name]) / statistics.median(samples[name + label])
            print(f"{name}: {ratio:.2f} × the median of{label}")


if __name__ == "__main__":
    main()
