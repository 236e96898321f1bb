"""Imports by upload (the console's mechanism, shared with the CLI): a preview that stores nothing and
says exactly what the commit will do, or every bad row; the commit of the same bytes; the uploads
kept; the background jobs, their progress, and one commit at a time. On every backend."""

from __future__ import annotations

import asyncio
import io
import os
import time
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select
from sqlmodel import Session

from handlers import imports
from handlers.import_jobs import ImportJobs, JobStatus
from handlers.uploads import open_upload, save_upload, upload_path
from models.db import make_engine
from models.errors import DataError
from models.imports.report import ImportRejected
from models.tables import Partner, Sale
from tests.models.test_excel_files import xlsx
from tests.support.csv_files import PARTNERS, SALES_HEADER

SETTINGS = {"timezone": "Asia/Shanghai", "default_locale": "zh"}
GOOD = SALES_HEADER + "S1,P001,2026-11-02 10:00,1200.50,2,300,客户甲,5\nS2,P002,2026-11-03,800,1,,,\n"
BAD = GOOD + "S3,P999,2026-11-03,800,1,,,\nS4,P001,昨天,800,1,,,\n"


def count(session: Session, table: type) -> int:
    session.expire_all()
    session.rollback()
    return session.execute(select(func.count()).select_from(table)).scalar_one()


def stream(text: str, encoding: str = "utf-8") -> io.BytesIO:
    return io.BytesIO(text.encode(encoding))


@pytest.fixture
def partners(engine: Engine) -> Engine:
    imports.commit(engine, "partners", stream(PARTNERS), **SETTINGS)
    return engine


@pytest.fixture
def jobs(partners: Engine, tmp_path: Path) -> ImportJobs:
    runner = ImportJobs(partners, media_dir=tmp_path / "media", **SETTINGS)
    yield runner  # type: ignore[misc]
    runner.close()


def finished(jobs: ImportJobs, job_id: str, timeout: float = 60) -> JobStatus:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = jobs.status(job_id)
        assert job is not None
        if job.finished:
            return job
        time.sleep(0.01)
    raise AssertionError(f"job {job_id} still {job.state}")


# --- preview and commit --------------------------------------------------------------------------


def test_a_preview_with_bad_rows_reports_each_and_stores_nothing(partners: Engine, session: Session) -> None:
    with pytest.raises(ImportRejected) as rejected:
        imports.preview(partners, "sales", stream(BAD), **SETTINGS)
    bad = rejected.value.by_line()
    assert [line for line, _errors in bad] == [4, 5]
    assert bad[0][1][0].key == "row.unknown_partner" and bad[0][1][0].params == {"value": "P999"}
    assert rejected.value.key == "error.import_rejected" and rejected.value.params == {"count": 2}
    assert count(session, Sale) == 0


def test_a_preview_gives_the_counts_the_commit_then_makes(partners: Engine, session: Session) -> None:
    first = imports.preview(partners, "sales", stream(GOOD), **SETTINGS)
    assert (first.rows, first.inserted, first.unchanged, first.source) == (2, 2, 0, "utf-8")
    assert count(session, Sale) == 0
    assert imports.preview(partners, "sales", stream(GOOD), **SETTINGS) == first  # nothing was left behind

    done = imports.commit(partners, "sales", stream(GOOD), **SETTINGS)
    assert done == first
    assert sorted(session.execute(select(Sale.ext_id)).scalars()) == ["S1", "S2"]

    again = imports.preview(partners, "sales", stream(GOOD + "S5,P003,2026-11-04,5,1,,,\n"), **SETTINGS)
    assert (again.rows, again.inserted, again.unchanged) == (3, 1, 2)
    assert count(session, Sale) == 2


def test_a_partners_preview_counts_updates_and_keeps_the_old_values(partners: Engine, session: Session) -> None:
    changed = PARTNERS.replace("P002,李娜,华东一队,华东,2", "P002,李娜,华南队,华南,2") + "P004,周敏,,,,,,,dealer,\n"
    seen = imports.preview(partners, "partners", stream(changed), **SETTINGS)
    assert (seen.rows, seen.inserted, seen.updated, seen.unchanged) == (5, 1, 1, 3)
    assert count(session, Partner) == 4
    assert session.execute(select(Partner.region).where(Partner.code == "P002")).scalar_one() == "华东"


def test_a_commit_with_a_bad_row_stores_nothing(partners: Engine, session: Session) -> None:
    with pytest.raises(ImportRejected):
        imports.commit(partners, "sales", stream(BAD), **SETTINGS)
    assert count(session, Sale) == 0


def test_a_gbk_csv_and_an_xlsx_sheet(partners: Engine, session: Session, tmp_path: Path) -> None:
    gbk = imports.preview(partners, "sales", stream(GOOD, "gbk"), **SETTINGS)
    assert (gbk.inserted, gbk.source) == (2, "gb18030")

    book = xlsx(tmp_path / "s.xlsx", ("说明", [["请看第二页"]]), ("销售", [
        ["id", "partner", "occurred_at", "amount", "units"],
        ["X1", "P001", datetime(2026, 11, 2, 10, 0), 1200.5, 2],
        ["X2", "P003", datetime(2026, 11, 3), 99, 1],
    ]))
    with book.open("rb") as f:
        seen = imports.preview(partners, "sales", f, sheet="销售", **SETTINGS)
    assert (seen.rows, seen.inserted, seen.source, seen.sheet) == (2, 2, "xlsx", "销售")
    assert count(session, Sale) == 0
    with book.open("rb") as f:
        assert imports.commit(partners, "sales", f, sheet="销售", **SETTINGS) == seen
    amounts = dict(session.execute(select(Sale.ext_id, Sale.amount_fen)).all())
    assert amounts == {"X1": 120050, "X2": 9900}


def test_a_bad_file_and_an_unknown_kind_are_refused(partners: Engine) -> None:
    with pytest.raises(DataError) as missing:
        imports.preview(partners, "sales", stream("id,partner\nS1,P001\n"), **SETTINGS)
    assert missing.value.key == "error.csv_missing_columns"
    with pytest.raises(DataError) as kind:
        imports.preview(partners, "points", stream(GOOD), **SETTINGS)
    assert kind.value.key == "error.import_kind"


def sales_file(rows: int) -> bytes:
    lines = [f"B{i},P00{1 + i % 3},2026-11-0{1 + i % 9} 10:00,{i % 997}.50,1,,,\n" for i in range(rows)]
    return (SALES_HEADER + "".join(lines)).encode()


def test_a_large_preview_reports_progress_as_it_goes(partners: Engine, session: Session, tmp_path: Path) -> None:
    path = tmp_path / "big.csv"
    path.write_bytes(sales_file(50_000))
    calls: list[tuple[int, int | None]] = []
    with path.open("rb") as f:
        seen = imports.preview(partners, "sales", f, progress=lambda done, total: calls.append((done, total)),
                               **SETTINGS)
    assert seen.inserted == 50_000
    assert {total for _done, total in calls} == {50_000}
    done = [d for d, _total in calls]
    assert done[0] == 0 and done[-1] == 50_000 and done == sorted(done)
    assert len(set(done) - {0, 50_000}) >= 2  # in between, more than once
    assert count(session, Sale) == 0


# --- uploads ----------------------------------------------------------------------------------------


def test_uploads_are_kept_by_their_sha256_for_a_day(tmp_path: Path) -> None:
    media = tmp_path / "media"
    upload_id = save_upload(media, b"id,partner\n")
    assert len(upload_id) == 64 and save_upload(media, b"id,partner\n") == upload_id
    with open_upload(media, upload_id.upper()) as f:
        assert f.read() == b"id,partner\n"
    for bad in ("../../etc/passwd", upload_id[:63], upload_id + "0", "g" * 64, ""):
        with pytest.raises(DataError) as refused:
            open_upload(media, bad)
        assert refused.value.key == "error.upload_unknown"
    with pytest.raises(DataError):
        open_upload(media, "0" * 64)  # well formed, never uploaded

    old = upload_path(media, upload_id)
    day_ago = time.time() - 25 * 3600
    os.utime(old, (day_ago, day_ago))
    other = save_upload(media, b"other")
    assert not old.exists() and upload_path(media, other).is_file()
    assert sorted(p.name for p in (media / "uploads").iterdir()) == [other]


# --- jobs ---------------------------------------------------------------------------------------------


def test_a_job_previews_then_commits_the_same_upload(jobs: ImportJobs, session: Session) -> None:
    bad = save_upload(jobs.media_dir, BAD.encode())
    job = finished(jobs, jobs.start("sales", bad, "preview"))
    assert (job.state, job.error_key, job.error_params) == ("failed", "error.import_rejected", {"count": 2})
    assert [line for line, _errors in job.bad_rows] == [4, 5] and job.report is None

    good = save_upload(jobs.media_dir, GOOD.encode())
    seen = finished(jobs, jobs.start("sales", good, "preview"))
    assert seen.state == "done" and seen.report is not None and seen.report.inserted == 2
    assert count(session, Sale) == 0
    done = finished(jobs, jobs.start("sales", good, "commit"))
    assert done.state == "done" and done.report == seen.report and (done.rows_done, done.total_rows) == (2, 2)
    assert count(session, Sale) == 2


def test_a_job_says_why_it_cannot_start_or_failed(jobs: ImportJobs) -> None:
    upload = save_upload(jobs.media_dir, b"id,partner\nS1,P001\n")
    for args, key in ((("points", upload, "preview"), "error.import_kind"),
                      (("sales", upload, "import"), "error.import_mode"),
                      (("sales", "0" * 64, "preview"), "error.upload_unknown"),
                      (("sales", "../x", "preview"), "error.upload_unknown")):
        with pytest.raises(DataError) as refused:
            jobs.start(*args)
        assert refused.value.key == key
    job = finished(jobs, jobs.start("sales", upload, "commit"))
    assert (job.state, job.error_key, job.error_params) == ("failed", "error.csv_missing_columns",
                                                            {"columns": "occurred_at, amount, units"})
    assert jobs.status("no-such-job") is None


def test_a_large_job_shows_progress_and_a_second_commit_is_refused(jobs: ImportJobs, session: Session) -> None:
    big = save_upload(jobs.media_dir, sales_file(50_000))
    first = jobs.start("sales", big, "commit")
    with pytest.raises(DataError) as refused:
        jobs.start("sales", save_upload(jobs.media_dir, GOOD.encode()), "commit")
    assert refused.value.key == "error.import_commit_busy"
    preview = jobs.start("sales", big, "preview")  # a preview waits its turn instead
    job = finished(jobs, first)
    assert job.state == "done" and job.report is not None and job.report.inserted == 50_000
    assert (job.rows_done, job.total_rows) == (50_000, 50_000)
    assert count(session, Sale) == 50_000
    after = finished(jobs, preview)
    assert after.report is not None and (after.report.inserted, after.report.unchanged) == (0, 50_000)
    finished(jobs, jobs.start("sales", big, "commit"))  # the first one done: a commit is welcome again


def test_the_event_loop_keeps_answering_while_a_job_runs(jobs: ImportJobs) -> None:
    """`start` and `status` only touch memory: a server's loop polls them while the worker imports."""
    big = save_upload(jobs.media_dir, sales_file(50_000))

    async def poll() -> tuple[int, JobStatus]:
        job_id = jobs.start("sales", big, "preview")
        ticks = 0
        while not (job := jobs.status(job_id)).finished:  # type: ignore[union-attr]
            ticks += 1
            await asyncio.sleep(0.001)
        return ticks, job

    ticks, job = asyncio.run(poll())
    assert job.state == "done" and ticks > 1


def test_a_jobs_plain_data_for_a_poll(jobs: ImportJobs) -> None:
    job = finished(jobs, jobs.start("sales", save_upload(jobs.media_dir, BAD.encode()), "preview"))
    doc = job.doc()
    assert doc["state"] == "failed" and doc["report"] is None
    assert doc["error"] == {"key": "error.import_rejected", "params": {"count": 2}}
    assert doc["bad_rows"][0] == {"line": 4, "reasons": [{"key": "row.unknown_partner", "params": {"value": "P999"}}]}
    assert doc["total_rows"] == 4


def test_a_sqlite_preview_leaves_the_checks_and_the_index_as_they_were(partners: Engine, db_url: str,
                                                                       tmp_path: Path) -> None:
    """The bulk path turns foreign-key checks off and may build the index at the end: a rollback
    brings both back, as a failed import's does."""
    if not db_url.startswith("sqlite"):
        pytest.skip("SQLite only: the bulk path")
    engine = make_engine(db_url)  # of the app's kind, with only this test's connections
    try:
        path = tmp_path / "big.csv"
        path.write_bytes(sales_file(30_000))
        with path.open("rb") as f:
            assert imports.preview(engine, "sales", f, **SETTINGS).inserted == 30_000
        assert engine.pool.checkedin() == 1
        with engine.connect() as conn:
            checks = conn.exec_driver_sql("PRAGMA foreign_keys").scalar_one()
            index = conn.exec_driver_sql("SELECT count(*) FROM sqlite_master "
                                         "WHERE name = 'ix_sale_partner_customer'").scalar_one()
            stored = conn.exec_driver_sql("SELECT count(*) FROM sale").scalar_one()
        assert (checks, index, stored) == (1, 1, 0)
    finally:
        engine.dispose()
