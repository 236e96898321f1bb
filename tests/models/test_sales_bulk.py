"""The bulk mode of a CSV sales import on SQLite: foreign-key checks off for its one transaction,
the (partner, customer) index built at the end for a file larger than the table, the write lock
taken before the partner codes are looked up. Nothing of it may show outside the import."""

from __future__ import annotations

import io
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select
from sqlmodel import Session

import models.imports.sqlite_sales
from models.csvfile import open_csv
from models.db import make_engine, session_scope
from models.errors import DataError
from models.imports.records import rows_from_csv
from models.imports.report import ImportRejected
from models.imports.sale_rows import SALE_COLUMNS, SALE_REQUIRED
from models.imports.sales import import_sales
from models.tables import Sale
from models.values import zone
from tests.support.cli_runner import mianzi
from tests.support.csv_files import PARTNERS, SALES_HEADER, write

INDEX = "ix_sale_partner_customer"
CHUNK = 500  # rows: large enough that the file's bytes read so far (with the read-ahead) estimate its size
BIG = 3000


@pytest.fixture
def sqlite_url(db_url: str, workdir: Path) -> str:
    if not db_url.startswith("sqlite"):
        pytest.skip("SQLite only: PostgreSQL takes the general path")
    assert mianzi("partners", "import", str(write(workdir / "partners.csv", PARTNERS))).code == 0
    return db_url


@pytest.fixture
def own_engine(sqlite_url: str) -> Iterator[Engine]:
    """An engine of the app's kind with only this test's connections in its pool."""
    engine = make_engine(sqlite_url)
    yield engine
    engine.dispose()


def sales(n: int, prefix: str = "B", partner: str = "P00{k}") -> str:
    return SALES_HEADER + "".join(
        f"{prefix}{i},{partner.format(k=1 + i % 3)},2026-11-0{1 + i % 9}T10:00:00,{i}.50,1,,C{i % 4},\n"
        for i in range(n))


def run_import(engine: Engine, path: Path, watch: list[tuple[int, int, int]] | None = None) -> int:
    """`sales import` as the CLI runs it, through `open_csv`; `watch` gets, after every chunk,
    (rows so far, foreign_keys, whether the index exists) as seen inside the transaction."""
    with path.open("rb") as stream, open_csv(stream, SALE_REQUIRED) as csv_rows, session_scope(engine) as session:
        def progress(n: int) -> None:
            if watch is not None:
                watch.append((n, *_state(session)))
        report = import_sales(session, rows_from_csv(csv_rows.columns, csv_rows.rows, SALE_COLUMNS),
                              zone("Asia/Shanghai"), progress=progress)
        if watch is not None:
            watch.append((-1, *_state(session)))
    return report.inserted


def _state(session: Session) -> tuple[int, int]:
    conn = session.connection()
    fk = conn.exec_driver_sql("PRAGMA foreign_keys").scalar_one()
    index = conn.exec_driver_sql("SELECT count(*) FROM sqlite_master WHERE name = ?", (INDEX,)).scalar_one()
    return fk, index


def outside(engine: Engine) -> tuple[int, int, int]:
    """Once the import is over: pooled connections, foreign_keys on each, the index."""
    pooled = engine.pool.checkedin()
    with Session(engine) as session:
        fk, index = _state(session)
    return pooled, fk, index


def count(engine: Engine) -> int:
    with Session(engine) as session:
        return session.execute(select(func.count()).select_from(Sale)).scalar_one()


def test_a_large_file_goes_in_without_checks_and_with_the_index_built_at_the_end(
        own_engine: Engine, workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(models.imports.sqlite_sales, "SQLITE_CHUNK", CHUNK)
    watch: list[tuple[int, int, int]] = []
    assert run_import(own_engine, write(workdir / "big.csv", sales(BIG)), watch) == BIG
    assert watch[0] == (CHUNK, 0, 0)         # foreign keys off, the index dropped at the first chunk
    assert watch[-1] == (-1, 0, 0)           # the index is owed to the transaction's end (models.db.owe_builds)
    assert outside(own_engine) == (1, 1, 1)  # one connection; the index built by the commit, checks back on
    assert count(own_engine) == BIG


def test_the_index_stays_when_the_table_holds_more_than_twice_the_file(
        own_engine: Engine, workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(models.imports.sqlite_sales, "SQLITE_CHUNK", CHUNK)
    assert run_import(own_engine, write(workdir / "first.csv", sales(BIG))) == BIG
    watch: list[tuple[int, int, int]] = []
    assert run_import(own_engine, write(workdir / "more.csv", sales(BIG // 3, prefix="M")), watch) == BIG // 3
    assert {index for _n, _fk, index in watch} == {1}
    watch.clear()
    assert run_import(own_engine, write(workdir / "most.csv", sales(BIG, prefix="N")), watch) == BIG
    assert watch[0] == (CHUNK, 0, 0) and watch[-1] == (-1, 0, 0)  # 2,500 more rows for 4,000: dropped, owed
    assert outside(own_engine)[2] == 1  # and built by the commit
    assert count(own_engine) == 2 * BIG + BIG // 3


def test_a_rejected_file_leaves_nothing_and_the_checks_back_on(
        own_engine: Engine, workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(models.imports.sqlite_sales, "SQLITE_CHUNK", CHUNK)
    bad = sales(BIG) + "X1,NOPE,2026-11-01T10:00:00,1,1,,,\nX2,P001,2026-11-01T10:00:00,-1,1,,,\n"
    watch: list[tuple[int, int, int]] = []
    with pytest.raises(ImportRejected) as rejected:
        run_import(own_engine, write(workdir / "bad.csv", bad), watch)
    assert watch[0] == (CHUNK, 0, 0)
    assert [(e.line, e.key) for e in rejected.value.errors] == [(BIG + 2, "row.unknown_partner"),
                                                                (BIG + 3, "row.money_negative")]
    assert outside(own_engine) == (1, 1, 1)
    assert count(own_engine) == 0


def test_a_file_that_breaks_midway_leaves_nothing_and_the_checks_back_on(
        own_engine: Engine, workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(models.imports.sqlite_sales, "SQLITE_CHUNK", CHUNK)
    path = workdir / "broken.csv"
    path.write_bytes(sales(BIG).encode() + b'B10,P001,"' + b"x" * 200_000 + b'",1,1,,,\n')  # past the csv field limit
    watch: list[tuple[int, int, int]] = []
    with pytest.raises(DataError) as broken:
        run_import(own_engine, path, watch)
    assert watch[0] == (CHUNK, 0, 0)
    assert broken.value.key == "error.csv_malformed" and broken.value.params["line"] == BIG + 2
    assert outside(own_engine) == (1, 1, 1)
    assert count(own_engine) == 0


def test_a_byte_of_no_encoding_at_the_end_refuses_the_file_before_anything_starts(
        own_engine: Engine, workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The encoding is decided from the whole file first: a bad byte at the end is not found midway."""
    monkeypatch.setattr(models.imports.sqlite_sales, "SQLITE_CHUNK", CHUNK)
    path = workdir / "broken.csv"
    path.write_bytes(sales(BIG).encode() + b"B10,P001,\xff\n")
    watch: list[tuple[int, int, int]] = []
    with pytest.raises(DataError) as broken:
        run_import(own_engine, path, watch)
    assert watch == []
    assert broken.value.key == "error.csv_encoding" and broken.value.params["line"] == BIG + 2
    assert outside(own_engine)[1:] == (1, 1)
    assert count(own_engine) == 0


def test_foreign_key_checks_still_hold_for_writes_outside_an_import(own_engine: Engine, workdir: Path) -> None:
    run_import(own_engine, write(workdir / "small.csv", sales(3)))
    with own_engine.connect() as conn, pytest.raises(Exception, match="FOREIGN KEY"):
        conn.exec_driver_sql("INSERT INTO sale (ext_id, partner_id, occurred_at, amount_fen, units, imported_at) "
                             "VALUES ('orphan', 999999, '2026-11-01', 1, 1, '2026-11-01')")


def test_records_and_a_transaction_that_already_wrote_keep_the_checks(own_engine: Engine) -> None:
    """Only a CSV file at the start of a transaction goes in bulk mode (the pragma cannot change later)."""
    with session_scope(own_engine) as session:
        session.connection().exec_driver_sql("UPDATE contest SET standings_dirty = 1")
        stream = io.BytesIO(sales(3).encode())
        with open_csv(stream, SALE_REQUIRED) as csv_rows:
            import_sales(session, rows_from_csv(csv_rows.columns, csv_rows.rows, SALE_COLUMNS), zone("Asia/Shanghai"))
        assert _state(session) == (1, 1)
    assert count(own_engine) == 3


def test_no_partner_can_be_deleted_while_the_import_runs(own_engine: Engine, sqlite_url: str) -> None:
    """The write lock is taken before the partner codes are looked up, so with the checks off a
    concurrent delete cannot leave sales without their partner: it waits for the import's commit."""
    db_file = sqlite_url.removeprefix("sqlite:///")
    attempts: list[str] = []

    def rows() -> Iterator[tuple[int, list[str]]]:
        other = sqlite3.connect(db_file, timeout=0.05)
        try:
            other.execute("PRAGMA foreign_keys=ON")
            other.execute("DELETE FROM partner WHERE code = 'P003'")
            other.commit()
            attempts.append("deleted")
        except sqlite3.OperationalError as exc:
            attempts.append(str(exc))
        finally:
            other.close()
        for i in range(3):
            yield i + 2, [f"L{i}", f"P00{1 + i}", "2026-11-02T10:00:00", "1.00", "1", "", "", ""]

    columns = {name: i for i, name in enumerate(SALE_COLUMNS)}
    with session_scope(own_engine) as session:
        import_sales(session, rows_from_csv(columns, rows(), SALE_COLUMNS), zone("Asia/Shanghai"))
    assert attempts == ["database is locked"]
    assert count(own_engine) == 3
    with own_engine.connect() as conn:
        orphans = conn.exec_driver_sql("SELECT count(*) FROM sale WHERE partner_id NOT IN (SELECT id FROM partner)")
        assert orphans.scalar_one() == 0


def test_a_value_with_a_line_break_fails_its_column_check(own_engine: Engine, workdir: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """Columns are checked with one pattern over their values joined by line breaks; a quoted value
    holding a line break must not pass as two good values."""
    monkeypatch.setattr(models.imports.sqlite_sales, "SQLITE_CHUNK", 3)
    rows = (SALES_HEADER + "N1,P001,2026-11-01T10:00:00,1.00,1,,,\n"
            + 'N2,P001,2026-11-01T10:00:00,"1.00\n2.00",1,,,\n' + 'N3,P001,2026-11-01T10:00:00,1.00,"1\n2",,,\n')
    with pytest.raises(ImportRejected) as rejected:
        run_import(own_engine, write(workdir / "n.csv", rows))
    # (a quoted record is numbered by the line it ends on, as the csv module counts)
    assert [(e.line, e.key) for e in rejected.value.errors] == [(4, "row.money_not_a_number"),
                                                                (6, "row.not_an_integer")]


def _traced(engine: Engine) -> list[tuple[str, str]]:
    """(thread name, statement) of every statement on the engine's one pooled connection from now on."""
    import threading

    seen: list[tuple[str, str]] = []
    with engine.connect() as conn:
        dbapi = conn.connection.dbapi_connection
        assert dbapi is not None
        dbapi.set_trace_callback(lambda sql: seen.append((threading.current_thread().name, sql)))
    return seen


def test_the_owed_indexes_are_built_beside_the_standings_and_dropped_by_a_rollback(
        own_engine: Engine, workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An import as the CLI and the console run it (`handlers.imports`, with a running contest):
    the indexes dropped for the file are built in a thread of their own while the standings are
    computed, before the lines are written; the standings are those of a full rebuild. A rejected
    file builds nothing: its rollback brings the indexes back as they were."""
    from handlers.imports import commit
    from models import standings
    from tests.support import builders as b

    monkeypatch.setattr(models.imports.sqlite_sales, "SQLITE_CHUNK", CHUNK)
    with session_scope(own_engine) as session:
        contest_id = b.contest(session).id
    seen = _traced(own_engine)
    bad = sales(BIG) + "X1,NOPE,2026-11-01T10:00:00,1,1,,,\n"
    with pytest.raises(ImportRejected):
        commit(own_engine, "sales", io.BytesIO(bad.encode()), timezone="Asia/Shanghai", default_locale="zh")
    assert [sql for _thread, sql in seen if sql.startswith("CREATE INDEX")] == []
    assert outside(own_engine)[2] == 1 and count(own_engine) == 0
    seen.clear()
    path = write(workdir / "big.csv", sales(BIG))
    with path.open("rb") as stream:
        report = commit(own_engine, "sales", stream, timezone="Asia/Shanghai", default_locale="zh")
    assert report.inserted == BIG
    builds = [(i, thread) for i, (thread, sql) in enumerate(seen) if sql.startswith("CREATE INDEX") and " ON sale " in sql]
    assert {thread for _i, thread in builds} == {"index-builds"} and len(builds) == 3
    first_line = next(i for i, (_t, sql) in enumerate(seen) if sql.startswith("INSERT INTO standing"))
    assert max(i for i, _thread in builds) < first_line
    assert outside(own_engine) == (1, 1, 1)
    with Session(own_engine) as session:
        contest = session.get(models.tables.Contest, contest_id)
        assert contest is not None and not contest.standings_dirty
        cached = {(s.partner_id, s.score, s.rank) for s in standings.all_lines(session, contest)}
        assert cached == {(e.partner_id, e.score, e.rank) for e in standings.compute(session, contest)}
        assert len(cached) == 3
