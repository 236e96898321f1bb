"""Sales into the append-only ledger: new ones appended, identical re-imports skipped, any bad row rejects all.

This is the general path (PostgreSQL, through SQLAlchemy Core in chunks, the new rows by COPY;
SQLite for a file with correcting rows); SQLite takes `models.imports.sqlite_sales`, with the same
results.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ARRAY, Connection, any_, bindparam, select
from sqlmodel import Session

from models.db import COPY_FROM, copy_rows, table_of
from models.imports.partners import partner_ids
from models.imports.records import CsvRecords, Progress, Row
from models.imports.report import ImportReport, RowError, reject_if_any
from models.imports.sale_reversals import write_reversals
from models.imports.sale_rows import REVERSAL_COLUMNS, PlainSale, ReversalRow, parse_sale
from models.imports.sqlite_sales import hold_write_lock, import_sales_sqlite
from models.standings import mark_open_contests_dirty, windows
from models.tables import Sale
from models.tallies import Tally
from models.values import as_utc, utcnow

CHUNK = 5000
SALE_FIELDS = ("partner_id", "occurred_at", "amount_fen", "units", "margin_fen", "customer", "satisfaction")


def import_sales(session: Session, rows: Iterable[Row], tz: ZoneInfo,
                 progress: Progress | None = None, now: datetime | None = None, keep: bool = True) -> ImportReport:
    """Append new sales; skip identical re-imports; reject the batch on any bad row.

    Rows are validated and written in chunks inside the caller's transaction, so a file of a
    million rows never sits in memory; on any error the caller's transaction is rolled back
    (the caller is `session_scope`), which is why this raises instead of returning errors.
    With `keep`, the open contests' sums are kept as the rows go in (`models.tallies`,
    `ImportReport.kept`).
    """
    now = now or utcnow()
    conn = session.connection()
    rows, corrections = _with_corrections(rows)
    if conn.dialect.name == "sqlite":
        if not corrections:
            return import_sales_sqlite(session, conn, rows, tz, progress, now, keep)
        hold_write_lock(conn)  # as the bulk path does: nobody commits between our reads and writes
    tally = Tally(windows(session, as_utc) if keep else [])
    partners = partner_ids(session)
    report = ImportReport()
    errors: list[RowError] = []
    chunk: list[tuple[int, str, PlainSale | ReversalRow]] = []
    bounds: list[datetime] = []
    for line, row in rows:
        report.rows += 1
        sale = parse_sale(row, line, errors, partners, tz)
        if sale is not None:
            chunk.append((line, row["id"], sale))
        if len(chunk) >= CHUNK:
            _write_sales(conn, chunk, errors, report, bounds, now, tally)
            chunk = []
            if progress:
                progress(report.rows)
    if chunk:
        _write_sales(conn, chunk, errors, report, bounds, now, tally)
    if progress:
        progress(report.rows)
    reject_if_any(errors)
    if report.inserted:
        mark_open_contests_dirty(session, min(bounds), max(bounds))
    report.kept = tally.kept()
    return report


def _with_corrections(rows: Iterable[Row]) -> tuple[Iterable[Row], bool]:
    """The rows, and whether they may hold correcting rows (then the general path takes them): a
    file with a `reverses` or `reason` column; records (the HTTP API's, already in memory) with
    a value in one."""
    if isinstance(rows, CsvRecords):
        return rows, any(name in rows.columns for name in REVERSAL_COLUMNS)
    rows = list(rows)
    return rows, any(row.get(name) for _line, row in rows for name in REVERSAL_COLUMNS)


def _write_sales(conn: Connection, chunk: list[tuple[int, str, PlainSale | ReversalRow]], errors: list[RowError],
                 report: ImportReport, bounds: list[datetime], now: datetime, tally: Tally) -> None:
    table = table_of(Sale)
    ids = [ext_id for _line, ext_id, _sale in chunk]
    cols = [table.c.ext_id] + [table.c[name] for name in SALE_FIELDS] + [table.c.reverses, table.c.reason]
    postgresql = conn.dialect.name == "postgresql"
    # PostgreSQL: the chunk's ids as one array parameter (`= ANY`), not an IN list of 5,000 values
    # compiled and converted again for every chunk (~8 s of 200,000 rows under the profiler).
    ids_known = (table.c.ext_id == any_(bindparam("ids", ids, type_=ARRAY(table.c.ext_id.type))) if postgresql
                 else table.c.ext_id.in_(ids))
    known: dict[str, tuple[Any, ...]] = {r[0]: (r[1], as_utc(r[2]), *r[3:])
                               for r in conn.execute(select(*cols).where(ids_known))}
    new_rows: list[dict[str, Any]] = []
    first_line: dict[str, int] = {}
    reversals: list[tuple[int, str, ReversalRow]] = []
    lo: datetime | None = None
    hi: datetime | None = None
    for line, ext_id, sale in chunk:
        if isinstance(sale, ReversalRow):
            reversals.append((line, ext_id, sale))
            continue
        before = known.get(ext_id)
        if before is not None:
            if before == (*sale, None, None):
                report.unchanged += 1
            else:
                errors.append(RowError(line, "row.conflicting_id", {"value": ext_id[:40],
                                                                    "first": first_line.get(ext_id)}))
            continue
        known[ext_id] = (*sale, None, None)
        first_line[ext_id] = line
        new_rows.append({"ext_id": ext_id, "partner_id": sale[0], "occurred_at": sale[1], "amount_fen": sale[2],
                         "units": sale[3], "margin_fen": sale[4], "customer": sale[5], "satisfaction": sale[6],
                         "imported_at": now})
        t = sale[1]
        if lo is None or t < lo:
            lo = t
        if hi is None or t > hi:
            hi = t
    if new_rows:
        if postgresql and len(new_rows) >= COPY_FROM:
            copy_rows(conn, table, new_rows)
        else:
            conn.execute(table.insert(), new_rows)
        report.inserted += len(new_rows)
        bounds.extend((lo, hi))  # type: ignore[arg-type]
        tally.add([(r["partner_id"], r["occurred_at"], r["amount_fen"], r["units"], r["margin_fen"], r["satisfaction"])
                   for r in new_rows])
    if reversals:
        write_reversals(conn, reversals, known, first_line, errors, report, bounds, now, tally)
