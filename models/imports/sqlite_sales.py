"""`import_sales` on SQLite: whole columns at a time, one executemany per chunk, a forked parser for large files."""

from __future__ import annotations

import gc
import json
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from itertools import islice, repeat
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection
from sqlmodel import Session

from models.db import ROWS_PER_INSERT, begin_unchecked
from models.imports.cells import MAX_TEXT
from models.imports.parser_process import CAN_FORK, Chunk, Parsed, forked
from models.imports.partners import partner_ids
from models.imports.records import CsvRecords, Progress, Row
from models.imports.report import ImportReport, RowError, reject_if_any
from models.imports.sale_columns import (
    BAD,
    HOUR,
    SATISFACTION,
    TIMES,
    UNITS,
    all_match,
    fen_column,
    sqlite_time,
    utc_hour,
)
from models.imports.sale_rows import SALE_COLUMNS, ReversalRow, parse_sale
from models.indexes import build_indexes, drop_indexes, owe_builds
from models.standings import mark_open_contests_dirty, windows
from models.tallies import Tally

# --- sales on SQLite: whole columns at a time, one executemany per chunk ---------------------------
#
# Per chunk, each column is checked and converted with one C-level pass (`map` over a precompiled
# regex, `int`, a dict); only a chunk with something unusual in it goes row by row through the
# careful `parse_sale`, so the errors (and the values) are exactly those of the general path. The
# rows are inserted with `ON CONFLICT (ext_id) DO NOTHING`: when every row went in (the usual
# case) no id had been seen before; otherwise the chunk's ids are looked up and compared.
#
# A CSV file (the CLI) is imported in bulk mode, see `_begin_bulk`: foreign-key checks off for the
# transaction, the garbage collector paused, and for a file of at least half as many rows as the
# table the secondary indexes built once at the end instead of row by row.

SqliteSale = tuple[str, int, str, int, int, int | None, str | None, int | None]
"""A sale as the SQLite path inserts it: ext_id, partner id, UTC time text, amount, units, margin,
customer, rating (the import's time is in the statement)."""

SaleColumns = list[list[Any]]
"""A chunk's good sales, a list per value of `SqliteSale` in its order (ext_id, partner id, …): as
the parser sends them (marshal writes eight lists faster than 10,000 tuples) and as the insert
lays them out and the sums read them."""

SQLITE_CHUNK = 10_000
_SALE_SQLITE_COLUMNS = "ext_id, partner_id, occurred_at, amount_fen, units, margin_fen, customer, satisfaction"
_WIDTH = 8  # values bound per row


def _insert_sql(imported: str, rows: int) -> str:
    """The INSERT of `rows` sales. The import's time, the same on every row, is written into the
    statement (our own text of a datetime: digits, '-', ':', '.', ' ', no quoting needed): one value
    fewer to bind per row."""
    one = "(" + ", ".join(["?"] * _WIDTH) + f", '{imported}')"
    return (f"INSERT INTO sale ({_SALE_SQLITE_COLUMNS}, imported_at) VALUES {', '.join([one] * rows)} "
            "ON CONFLICT (ext_id) DO NOTHING")


_SQLITE_KNOWN = (f"SELECT id, {_SALE_SQLITE_COLUMNS} FROM sale "
                 "WHERE ext_id IN (SELECT value FROM json_each(?))")
_MAX_HOURS = 100_000
_DEFERRED_INDEXES = ("ix_sale_partner_customer", "ix_sale_occurred_partner", "ix_sale_imported_at")
"""The sale table's indexes a large file's import drops at its first chunk and builds at the end
(`_SqliteSales._maybe_defer_index`): all but the primary key, the `ext_id` one, which every
insert's ON CONFLICT reads (and which takes the rows in the file's order, ids rising), and the
partial `ix_sale_reverses`, which has no entry for an imported sale (a build would read the whole
table for none)."""


class _SqliteSales:
    """The SQLite path of `import_sales`: chunks of positional values in, inserted rows out."""

    def __init__(self, conn: Connection, partners: dict[str, int], tz: ZoneInfo, now: datetime,
                 report: ImportReport, errors: list[RowError], file_share: Callable[[], float | None] | None = None,
                 tally: Tally | None = None) -> None:
        self.tally = tally or Tally([])
        self.cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        self.file_share = file_share
        self.deferred: list[str] = []  # CREATE INDEX statements to run at the end
        self.partners = partners
        self.tz = tz
        self.imported = sqlite_time(now)
        self.insert_one = _insert_sql(self.imported, 1)
        self.insert_many = _insert_sql(self.imported, ROWS_PER_INSERT)
        self.report = report
        self.errors = errors
        self.hours: dict[str, str] = {}
        self.lo: str | None = None
        self.hi: str | None = None

    def parse(self, lines: list[int], rows: list[Sequence[str] | None]) -> Parsed:
        """Rows of the eight SALE_COLUMNS values (unstripped), with their line numbers: how many, the
        line numbers of the good ones, their sales as columns (`SaleColumns`) and the chunk's errors."""
        errors = self.errors = []
        columns = self._columns(rows)
        if columns is not None:
            return len(rows), lines, columns, errors
        good = [(line, sale) for line, sale in zip(lines, self._careful(lines, rows), strict=True) if sale is not None]
        columns = [list(column) for column in zip(*(sale for _line, sale in good), strict=True)]
        return len(rows), [line for line, _sale in good], columns or [[] for _ in range(_WIDTH)], errors

    def _columns(self, rows: list[Sequence[str] | None]) -> SaleColumns | None:
        """The chunk's sales as columns if every value is of the usual shape, else None."""
        if None in rows:
            return None
        # Only ids and customers are stripped: any other value with spaces around it fails its
        # column's check below (a pattern, or a lookup) and the careful path strips it.
        ids: Sequence[str]
        customers: Sequence[str]
        ids, codes, times, amounts, units, margins, customers, ratings = zip(*rows, strict=True)
        ids, customers = list(map(str.strip, ids)), list(map(str.strip, customers))
        if not all(ids) or max(map(len, ids)) > 128:
            return None
        partner_ids = list(map(self.partners.get, codes))
        if None in partner_ids:
            return None
        utc_times = self._times(times)
        if utc_times is None:
            return None
        fen = fen_column(amounts)
        if fen is None:
            return None
        margin_fen = fen_column(margins, optional=True)
        if margin_fen is None:
            return None
        if not all_match(UNITS, units):
            return None
        unit_counts = list(map(int, units))
        if max(unit_counts) > 10**9:
            return None
        stars = list(map(SATISFACTION.get, ratings, repeat(BAD)))
        if BAD in stars:
            return None
        if max(map(len, customers)) > MAX_TEXT:
            return None
        buyers = [c or None for c in customers]
        return [ids, partner_ids, utc_times, fen, unit_counts, margin_fen, buyers, stars]

    def _times(self, times: Sequence[str]) -> list[str] | None:
        """`YYYY-MM-DDTHH:MM:SS` without an offset as SQLite's UTC text, each hour's offset cached."""
        if not all_match(TIMES, times):
            return None
        hours = self.hours
        keys = list(map(HOUR, times))
        for key in set(keys).difference(hours):
            if len(hours) >= _MAX_HOURS:
                hours.clear()
            hours[key] = utc_hour(key, self.tz)
        prefixes = list(map(hours.__getitem__, keys))
        if "" in prefixes:
            return None
        return [f"{prefix}{text[13:]}.000000" for prefix, text in zip(prefixes, times, strict=True)]

    def _careful(self, lines: list[int], rows: list[Sequence[str] | None]) -> list[tuple[Any, ...] | None]:
        sales: list[tuple[Any, ...] | None] = []
        for line, values in zip(lines, rows, strict=True):
            row = (dict(zip(SALE_COLUMNS, map(str.strip, values), strict=True)) if values is not None
                   else {"__invalid__": "not_an_object"})
            sale = parse_sale(row, line, self.errors, self.partners, self.tz)
            if sale is None:
                sales.append(None)
            else:
                assert not isinstance(sale, ReversalRow)  # these rows have no `reverses` (SALE_COLUMNS only)
                sales.append((row["id"], sale[0], sqlite_time(sale[1]), *sale[2:]))
        return sales

    def write(self, lines: list[int], columns: SaleColumns) -> None:
        """The chunk's good sales (`parse`'s lines and columns) inserted, and kept in the sums."""
        count = len(columns[0])
        if not count:
            return
        before = self.cursor.execute("SELECT max(id) FROM sale").fetchone()[0] or 0
        if self.file_share is not None:
            self._maybe_defer_index(before, count)
        inserted = self._insert(columns)
        self.report.inserted += inserted
        if inserted == count:
            # Every row went in: the kept sums take them all. Here, not in the forked parser of a
            # large file: the parser is the slower of the two processes (it waited for nothing,
            # this one waited for it), so the sums cost this one no time.
            _ids, pids, times, amounts, units, margins, _buyers, ratings = columns
            self._bounds(times)
            self.tally.add_columns(pids, times, amounts, units, margins, ratings)
        else:
            self.tally.lose()  # some rows were stored already: not told apart from the new ones here
            self._sift(lines, columns, before)

    def _insert(self, columns: SaleColumns) -> int:
        """The rows inserted (`ON CONFLICT (ext_id) DO NOTHING`), in order, `ROWS_PER_INSERT` a
        statement; how many went in. The statements' values are laid out from the columns by slice
        assignment (C-level), not row by row."""
        count = len(columns[0])
        whole = count - count % ROWS_PER_INSERT
        inserted = 0
        if whole:
            flat: list[Any] = [None] * (whole * _WIDTH)
            for place, column in enumerate(columns):
                flat[place::_WIDTH] = column[:whole] if whole < count else column
            step = ROWS_PER_INSERT * _WIDTH
            self.cursor.executemany(self.insert_many, [flat[i:i + step] for i in range(0, len(flat), step)])
            inserted += self.cursor.rowcount
        if whole < count:
            self.cursor.executemany(self.insert_one, list(zip(*(column[whole:] for column in columns), strict=True)))
            inserted += self.cursor.rowcount
        return int(inserted)

    def _maybe_defer_index(self, stored: int, rows: int) -> None:
        """Decided once, at the first chunk of a file: drop the secondary indexes (`_DEFERRED_INDEXES`),
        to build them once at the end, if the rest of the file holds at least half as many rows as
        the table (the largest id: the ledger is append-only).

        A build sorts the whole table, while keeping an index costs per row inserted, more the larger
        the index. Measured (whole imports): 1,000,000 rows into an empty table, the (partner,
        customer) index ~3 s kept against ~1.3 s built; into a table of 1,000,000, 11.6-12.3 s kept
        against 9.3-9.6 s dropped and built (2,000,000 rows); 500,000 into 1,000,000, 5.3 s either
        way: the break-even. The others take the rows of a file in time order at the end of the
        index, yet each costs a full descent of its tree per row inserted: 1,000,000 rows by the
        driver, one a statement, into a table with them (and the full reversals index of then)
        8.1 s, without them 3.6 s, and their build afterwards 1.8 s (the sqlite3 module, by hand)."""
        share = self.file_share() if self.file_share is not None else None
        self.file_share = None
        if not share or rows < SQLITE_CHUNK:
            return
        remaining = rows / share - rows
        if remaining < max(stored / 2, SQLITE_CHUNK):
            return
        self.deferred = drop_indexes(self.cursor, _DEFERRED_INDEXES)

    def build_deferred(self, conn: Connection) -> None:
        """The indexes dropped for the import, owed to the end of its transaction (`owe_builds`: to
        be built beside the standings' computation; a rollback brings them back unbuilt), or built
        now where that cannot be."""
        if not owe_builds(conn, self.cursor, self.deferred):
            build_indexes(self.cursor, self.deferred)

    def _bounds(self, times: list[str]) -> None:
        if times:
            lo, hi = min(times), max(times)
            self.lo = lo if self.lo is None else min(self.lo, lo)
            self.hi = hi if self.hi is None else max(self.hi, hi)

    def _sift(self, lines: list[int], columns: SaleColumns, before: int) -> None:
        """Some ids were there already (or twice in the chunk): like `sales._write_sales`, after the fact."""
        stored = {r[1]: (r[0], tuple(r[2:])) for r in self.cursor.execute(_SQLITE_KNOWN, (json.dumps(columns[0]),))}
        first_line: dict[str, int] = {}
        new_times = []
        for line, sale in zip(lines, zip(*columns, strict=True), strict=True):
            ext_id = sale[0]
            rowid, values = stored[ext_id]
            if rowid > before and ext_id not in first_line:
                first_line[ext_id] = line  # this row went in
                new_times.append(sale[2])
            elif values == sale[1:]:
                self.report.unchanged += 1
            else:
                self.errors.append(RowError(line, "row.conflicting_id", {"value": ext_id[:40],
                                                                          "first": first_line.get(ext_id)}))
        self._bounds(new_times)


def import_sales_sqlite(session: Session, conn: Connection, rows: Iterable[Row], tz: ZoneInfo,
                         progress: Progress | None, now: datetime, keep: bool = True) -> ImportReport:
    """`import_sales` on SQLite, with the same results as the general path."""
    bulk = isinstance(rows, CsvRecords) and _begin_bulk(conn)
    if not bulk:
        hold_write_lock(conn)
    tally = Tally(windows(session, sqlite_time) if keep else [])  # with the write lock held: see `windows`
    partners = partner_ids(session)
    report = ImportReport()
    errors: list[RowError] = []
    share = rows.raw.share_read if bulk and isinstance(rows, CsvRecords) and hasattr(rows.raw, "share_read") else None
    writer = _SqliteSales(conn, partners, tz, now, report, [], file_share=share, tally=tally)
    chunks = _parsed_chunks(rows, writer)
    with _gc_paused(bulk):
        try:
            for count, lines, sales, chunk_errors in chunks:
                report.rows += count
                errors.extend(chunk_errors)
                writer.errors = errors
                writer.write(lines, sales)
                if progress:
                    progress(report.rows)
        except BaseException:
            chunks.close()  # a forked parser stops now, not when the traceback is let go of
            with suppress(Exception):  # the transaction is lost anyway (a rollback brings the indexes back)
                writer.build_deferred(conn)
            raise
        writer.build_deferred(conn)
    if progress:
        progress(report.rows)
    reject_if_any(errors)
    if report.inserted:
        mark_open_contests_dirty(session, datetime.fromisoformat(writer.lo).replace(tzinfo=UTC),  # type: ignore
                                 datetime.fromisoformat(writer.hi).replace(tzinfo=UTC))  # type: ignore
    report.kept = tally.kept()
    return report


def _begin_bulk(conn: Connection) -> bool:
    """Start the import's transaction with foreign-key checks off, if possible; whether it did
    (`models.db.begin_unchecked`).

    The checks are redundant here: every partner id comes from the code lookup, and
    `BEGIN IMMEDIATE` takes the write lock *before* that lookup, so no other connection can
    delete a partner between the lookup and the commit. Everything else the caller does in the
    same transaction runs without the checks too (the CLI only refreshes standings).
    """
    return begin_unchecked(conn)


def hold_write_lock(conn: Connection) -> None:
    """Take SQLite's write lock now, before anything is read, unless the transaction holds it.

    `_SqliteSales.write` tells the rows it inserted from those already stored by comparing their
    ids with the largest id read before the insert: that read must see every committed row, so
    no other import may commit between it and the insert. pysqlite begins a transaction only at
    the first write, so a read before it is outside any transaction; a transaction that has
    begun has written, and holds the lock already. (A concurrent import of the same ids then
    waits here for the other's commit, and finds its rows: unchanged, or a conflicting id.)
    """
    dbapi = conn.connection.dbapi_connection
    if dbapi is None or dbapi.in_transaction:
        return
    cursor = dbapi.cursor()
    try:
        cursor.execute("BEGIN IMMEDIATE")
    finally:
        cursor.close()


@contextmanager
def _gc_paused(paused: bool) -> Iterator[None]:
    """No garbage collection while a large file goes in: each chunk allocates ~100,000 objects that
    live just long enough to be promoted, and every full collection walks the whole heap
    (measured: ~1 s per million rows in this process). Nothing here makes reference cycles."""
    if not paused or not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def _parsed_chunks(rows: Iterable[Row], parser: _SqliteSales) -> Generator[Parsed, None, None]:
    """The chunks parsed: the first one here; for a CSV file of more, the rest in a forked process
    while this one inserts (SQLite's work and Python's parsing then take a core each)."""
    chunks = _positional_chunks(rows)
    first = next(chunks, None)
    if first is None:
        return
    yield parser.parse(*first)
    if len(first[0]) < SQLITE_CHUNK or not isinstance(rows, CsvRecords) or not CAN_FORK:
        for chunk in chunks:
            yield parser.parse(*chunk)
        return
    yield from forked(chunks, parser)


def _positional_chunks(rows: Iterable[Row]) -> Iterator[Chunk]:
    """Chunks of (line numbers, the eight SALE_COLUMNS values of each row or None for a non-object)."""
    if isinstance(rows, CsvRecords) and hasattr(rows.raw, "batch"):
        yield from _csv_chunks(rows)
        return
    if isinstance(rows, CsvRecords):
        source: Iterator[tuple[int, Sequence[str] | None]] = _csv_values(rows)
    else:
        source = ((line, None if "__invalid__" in row else tuple(row.get(name, "") for name in SALE_COLUMNS))
                  for line, row in rows)
    while batch := list(islice(source, SQLITE_CHUNK)):
        lines, values = zip(*batch, strict=True)
        yield list(lines), list(values)


def _csv_chunks(records: CsvRecords) -> Iterator[Chunk]:
    """`_positional_chunks` for a CSV file read a chunk at a time."""
    index = [records.columns.get(name) for name in SALE_COLUMNS]
    width = len(SALE_COLUMNS)
    usual = index == list(range(width))
    while True:
        lines, values = records.raw.batch(SQLITE_CHUNK)  # type: ignore[attr-defined]
        if not lines:
            return
        if not usual or min(map(len, values)) != width or max(map(len, values)) != width:
            values = [v if usual and len(v) == width else _pick(v, index) for v in values]
        yield lines, values


def _csv_values(records: CsvRecords) -> Iterator[tuple[int, Sequence[str]]]:
    index = [records.columns.get(name) for name in SALE_COLUMNS]
    width = len(SALE_COLUMNS)
    if index == list(range(width)):
        for line, values in records.raw:
            yield line, values if len(values) == width else _pick(values, index)
    else:
        for line, values in records.raw:
            yield line, _pick(values, index)


def _pick(values: Sequence[str], index: list[int | None]) -> tuple[str, ...]:
    n = len(values)
    return tuple(values[i] if i is not None and i < n else "" for i in index)
