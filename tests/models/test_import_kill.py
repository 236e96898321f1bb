"""The forked parser of a CSV sales import dies with its importer: SIGKILL the real `mianzi sales
import` mid-file and no orphan is left holding the database and the file; an importer that fails
stops its parser at once."""

from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select
from sqlmodel import Session

import models.imports.parser_process
import models.imports.sqlite_sales
from models.csvfile import open_csv
from models.db import session_scope
from models.imports.records import rows_from_csv
from models.imports.sale_rows import SALE_COLUMNS, SALE_REQUIRED
from models.imports.sales import import_sales
from models.tables import Sale
from models.values import zone
from tests.support.cli_runner import MIANZI, mianzi
from tests.support.csv_files import PARTNERS, SALES_HEADER, write

ROWS = 400_000  # seconds of work for the importer: it is killed long before the end


@pytest.fixture
def sqlite_db(db_url: str, workdir: Path) -> str:
    if not db_url.startswith("sqlite"):
        pytest.skip("SQLite only: the forked parser is the SQLite bulk path's")
    if not models.imports.parser_process.CAN_FORK:
        pytest.skip("no fork on this platform")
    assert mianzi("partners", "import", str(write(workdir / "partners.csv", PARTNERS))).code == 0
    return db_url


def big_file(path: Path, rows: int) -> Path:
    with path.open("w", encoding="utf-8") as out:
        out.write(SALES_HEADER)
        out.writelines(f"K{i},P00{1 + i % 3},2026-11-{1 + i % 28:02d}T10:00:00,{i % 1000}.50,1,,C{i % 50},\n"
                       for i in range(rows))
    return path


def children_of(pid: int) -> list[int]:
    """Live processes whose parent is `pid` (from /proc; a zombie counts as gone)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        state, ppid = stat.rsplit(")", 1)[1].split()[:2]
        if int(ppid) == pid and state != "Z":
            found.append(int(entry))
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def sales_count(engine: Engine) -> int:
    with Session(engine) as s:
        return s.execute(select(func.count()).select_from(Sale)).scalar_one()


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc")
def test_a_sigkilled_import_leaves_no_parser_running(sqlite_db: str, engine: Engine, workdir: Path) -> None:
    path = big_file(workdir / "big.csv", ROWS)
    env = {**os.environ, "MIANZI_DATABASE_URL": sqlite_db}
    log = (workdir / "import.log").open("w")
    importer = subprocess.Popen([*MIANZI, "sales", "import",
                                 str(path)], env=env, cwd=workdir, stdout=log, stderr=subprocess.STDOUT)
    parsers: list[int] = []
    try:
        deadline = time.monotonic() + 120
        while not parsers and importer.poll() is None and time.monotonic() < deadline:
            parsers = children_of(importer.pid)
            time.sleep(0.01)
        assert parsers, f"no parser process was seen: {(workdir / 'import.log').read_text()[-2000:]}"
        importer.send_signal(signal.SIGKILL)
        importer.wait(30)
        deadline = time.monotonic() + 10
        while any(map(alive, parsers)) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert not any(map(alive, parsers)), "the parser outlived its importer"
    finally:
        log.close()
        if importer.poll() is None:
            importer.kill()
            importer.wait()
        for pid in parsers:  # an orphan of the code under test: stop it by its id
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
    assert sales_count(engine) == 0  # nothing of the killed import was committed
    small = write(workdir / "small.csv", SALES_HEADER + "S1,P001,2026-11-03T10:00:00,100.00,1,,C1,5\n")
    ran = mianzi("sales", "import", str(small))  # and nothing holds the database
    assert ran.code == 0, ran.err
    assert sales_count(engine) == 1


def test_an_importer_that_fails_midway_stops_its_parser(
        sqlite_db: str, engine: Engine, workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An error in the importing process (here: a write that fails at the third chunk) stops the
    parser: it ends by itself as soon as nobody reads what it sends (it keeps no copy of the pipe's
    reading end), rather than blocking until the importer gives up waiting and terminates it."""
    monkeypatch.setattr(models.imports.sqlite_sales, "SQLITE_CHUNK", 500)
    path = big_file(workdir / "many.csv", 20_000)
    real_write = models.imports.sqlite_sales._SqliteSales.write
    calls = iter(range(10**6))

    def failing_write(self: models.imports.sqlite_sales._SqliteSales, lines: list[int], sales: list) -> None:
        if next(calls) == 2:
            raise OSError("disk full")
        real_write(self, lines, sales)

    started: list[multiprocessing.process.BaseProcess] = []
    real_start = multiprocessing.context.ForkProcess.start

    def recorded_start(self: multiprocessing.process.BaseProcess) -> None:
        started.append(self)
        real_start(self)

    monkeypatch.setattr(models.imports.sqlite_sales._SqliteSales, "write", failing_write)
    monkeypatch.setattr(multiprocessing.context.ForkProcess, "start", recorded_start)
    with pytest.raises(OSError) as failed, path.open("rb") as stream, \
            open_csv(stream, SALE_REQUIRED) as csv_rows, session_scope(engine) as session:
        import_sales(session, rows_from_csv(csv_rows.columns, csv_rows.rows, SALE_COLUMNS), zone("Asia/Shanghai"))
    assert failed.value.args == ("disk full",)
    assert len(started) == 1 and not started[0].is_alive()
    assert started[0].exitcode == 0  # it stopped by itself (-SIGTERM: it had to be terminated)
    assert sales_count(engine) == 0
