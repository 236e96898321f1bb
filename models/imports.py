"""Validation and import of partners, targets and sales (CLI files and the HTTP API alike).

A batch with any invalid row imports nothing: every bad row is reported with its line number and
a reason key (rendered by `messages`). Re-importing the same data changes nothing; a sale id that
was imported before with other content is an error (the sales ledger is append-only).
"""

from __future__ import annotations

import json
import queue
import re
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from operator import itemgetter
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, select, update
from sqlmodel import Session

from models.errors import DataError
from models.tables import ROLES, Contest, Partner, Sale, Target, Team
from models.values import parse_datetime_local, parse_fen, utcnow

PARTNER_COLUMNS = ("code", "name", "team", "region", "city_tier", "industry", "size", "joined_on", "role",
                   "locale")
TARGET_COLUMNS = ("partner", "period_start", "period_end", "target")
SALE_COLUMNS = ("id", "partner", "occurred_at", "amount", "units", "margin", "customer", "satisfaction")
SALE_REQUIRED = ("id", "partner", "occurred_at", "amount", "units")
LOCALES = ("zh", "en")
MAX_TEXT = 200
CHUNK = 5000

Row = tuple[int, dict[str, str]]
Progress = Callable[[int], None]


@dataclass(frozen=True)
class RowError:
    line: int
    key: str
    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class ImportReport:
    rows: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0


class ImportRejected(DataError):
    """The batch had bad rows; nothing was imported."""

    def __init__(self, errors: list[RowError]) -> None:
        super().__init__("error.import_rejected", count=len(errors))
        self.errors = errors


def rows_from_csv(columns: dict[str, int], rows: Iterable[tuple[int, list[str]]],
                  names: tuple[str, ...]) -> Iterator[Row]:
    """Turn positional CSV rows into dicts of the known columns (absent columns read as empty)."""
    index = [(name, columns.get(name)) for name in names]
    positions = [i for _name, i in index if i is not None]
    # The usual case (every column present, a full row) without a Python loop per value.
    whole = itemgetter(*positions) if len(positions) == len(names) > 1 else None
    width = max(positions, default=-1) + 1
    for line, values in rows:
        n = len(values)
        if whole is not None and n >= width:
            yield line, dict(zip(names, map(str.strip, whole(values)), strict=True))
        else:
            yield line, {name: (values[i].strip() if i is not None and i < n else "") for name, i in index}


def rows_from_records(records: Iterable[Any], names: tuple[str, ...]) -> Iterator[Row]:
    """JSON records (the HTTP API) numbered from 1; numbers become their text."""
    for number, record in enumerate(records, start=1):
        if not isinstance(record, dict):
            yield number, {"__invalid__": "not_an_object"}
            continue
        yield number, {name: _text(record.get(name)) for name in names}


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "__bool__"
    return str(value).strip()


def _check_text(row: dict[str, str], name: str, errors: list[RowError], line: int,
                required: bool = False) -> str | None:
    value = row.get(name, "")
    if not value:
        if required:
            errors.append(RowError(line, "row.missing_value", {"column": name}))
        return None
    if len(value) > MAX_TEXT:
        errors.append(RowError(line, "row.too_long", {"column": name, "max": MAX_TEXT}))
        return None
    return value


def _parse_date(row: dict[str, str], name: str, errors: list[RowError], line: int,
                required: bool = False) -> date | None:
    value = row.get(name, "")
    if not value:
        if required:
            errors.append(RowError(line, "row.missing_value", {"column": name}))
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        errors.append(RowError(line, "row.bad_date", {"column": name, "value": value[:40]}))
        return None


# --- partners ---------------------------------------------------------------------------------


def import_partners(session: Session, rows: Iterable[Row], default_locale: str = "zh") -> ImportReport:
    """Add or update partners (by code) and create their teams (by team code)."""
    report = ImportReport()
    errors: list[RowError] = []
    parsed: list[tuple[int, dict[str, Any]]] = []
    seen: dict[str, int] = {}
    for line, row in rows:
        report.rows += 1
        before = len(errors)
        values = _parse_partner(row, line, errors, default_locale)
        code = values.get("code")
        if code:
            if code in seen:
                errors.append(RowError(line, "row.duplicate_in_file", {"value": code, "first": seen[code]}))
            seen[code] = line
        if len(errors) == before:
            parsed.append((line, values))
    if errors:
        raise ImportRejected(errors)

    teams = {t.code: t for t in session.exec(select(Team)).scalars()}
    existing = {p.code: p for p in session.exec(select(Partner)).scalars()}
    for _line, values in parsed:
        team_code = values.pop("team")
        team_id = None
        if team_code:
            team = teams.get(team_code)
            if team is None:
                team = Team(code=team_code, name=team_code)
                session.add(team)
                session.flush()
                teams[team_code] = team
            team_id = team.id
        values["team_id"] = team_id
        partner = existing.get(values["code"])
        if partner is None:
            session.add(Partner(**values))
            report.inserted += 1
        elif any(getattr(partner, k) != v for k, v in values.items()):
            for k, v in values.items():
                setattr(partner, k, v)
            report.updated += 1
        else:
            report.unchanged += 1
    if report.inserted or report.updated:
        session.flush()
        mark_open_contests_dirty(session)
    return report


def _parse_partner(row: dict[str, str], line: int, errors: list[RowError], default_locale: str) -> dict:
    if "__invalid__" in row:
        errors.append(RowError(line, "row.not_an_object"))
        return {}
    values: dict[str, Any] = {
        "code": _check_text(row, "code", errors, line, required=True),
        "name": _check_text(row, "name", errors, line, required=True),
        "team": _check_text(row, "team", errors, line),
        "region": _check_text(row, "region", errors, line),
        "industry": _check_text(row, "industry", errors, line),
        "size": _check_text(row, "size", errors, line),
        "joined_on": _parse_date(row, "joined_on", errors, line),
    }
    code = values["code"]
    if code and (len(code) > 64 or any(c.isspace() for c in code)):
        errors.append(RowError(line, "row.bad_code", {"value": code[:40]}))
    tier = row.get("city_tier", "")
    values["city_tier"] = None
    if tier:
        if tier in ("1", "2", "3"):
            values["city_tier"] = int(tier)
        else:
            errors.append(RowError(line, "row.bad_city_tier", {"value": tier[:40]}))
    role = (row.get("role") or "dealer").lower()
    if role not in ROLES:
        errors.append(RowError(line, "row.bad_role", {"value": role[:40]}))
    values["role"] = role
    locale = (row.get("locale") or default_locale).lower()
    if locale not in LOCALES:
        errors.append(RowError(line, "row.bad_locale", {"value": locale[:40]}))
    values["locale"] = locale
    return values


# --- targets ----------------------------------------------------------------------------------


def import_targets(session: Session, rows: Iterable[Row]) -> ImportReport:
    """Add or update targets, one per partner and period."""
    report = ImportReport()
    errors: list[RowError] = []
    partners = dict(session.exec(select(Partner.code, Partner.id)).all())
    parsed: dict[tuple[int, date, date], tuple[int, int]] = {}
    for line, row in rows:
        report.rows += 1
        before = len(errors)
        if "__invalid__" in row:
            errors.append(RowError(line, "row.not_an_object"))
            continue
        code = _check_text(row, "partner", errors, line, required=True)
        partner_id = partners.get(code) if code else None
        if code and partner_id is None:
            errors.append(RowError(line, "row.unknown_partner", {"value": code[:40]}))
        start = _parse_date(row, "period_start", errors, line, required=True)
        end = _parse_date(row, "period_end", errors, line, required=True)
        if start and end and end < start:
            errors.append(RowError(line, "row.period_reversed", {"start": str(start), "end": str(end)}))
        target = _money(row, "target", errors, line, required=True)
        if target == 0:
            errors.append(RowError(line, "row.zero_target"))
        if len(errors) == before and partner_id and start and end and target is not None:
            key = (partner_id, start, end)
            if key in parsed and parsed[key][0] != target:
                errors.append(RowError(line, "row.duplicate_in_file", {"value": code, "first": parsed[key][1]}))
            parsed[key] = (target, line)
    if errors:
        raise ImportRejected(errors)
    existing = {(t.partner_id, t.period_start, t.period_end): t for t in session.exec(select(Target)).scalars()}
    for key, (target, _line) in parsed.items():
        row_obj = existing.get(key)
        if row_obj is None:
            session.add(Target(partner_id=key[0], period_start=key[1], period_end=key[2], target_fen=target))
            report.inserted += 1
        elif row_obj.target_fen != target:
            row_obj.target_fen = target
            report.updated += 1
        else:
            report.unchanged += 1
    if report.inserted or report.updated:
        session.flush()
        mark_open_contests_dirty(session)
    return report


def _money(row: dict[str, str], name: str, errors: list[RowError], line: int, required: bool) -> int | None:
    value = row.get(name, "")
    if not value:
        if required:
            errors.append(RowError(line, "row.missing_value", {"column": name}))
        return None
    try:
        return parse_fen(value)
    except ValueError as exc:
        errors.append(RowError(line, f"row.money_{exc.args[0]}", {"column": name, "value": value[:40]}))
        return None


# --- sales ------------------------------------------------------------------------------------

_SALE_FIELDS = ("partner_id", "occurred_at", "amount_fen", "units", "margin_fen", "customer", "satisfaction")


def import_sales(session: Session, rows: Iterable[Row], tz: ZoneInfo,
                 progress: Progress | None = None, now: datetime | None = None) -> ImportReport:
    """Append new sales; skip identical re-imports; reject the batch on any bad row.

    Rows are validated and written in chunks inside the caller's transaction, so a file of a
    million rows never sits in memory; on any error the caller's transaction is rolled back
    (the caller is `session_scope`), which is why this raises instead of returning errors.
    """
    now = now or utcnow()
    conn = session.connection()
    partners: dict[str, int] = dict(session.exec(select(Partner.code, Partner.id)).all())
    if conn.dialect.name == "sqlite":
        return _import_sales_sqlite(session, conn, rows, partners, tz, progress, now)
    report = ImportReport()
    errors: list[RowError] = []
    chunk: list[tuple[int, str, tuple]] = []
    bounds: list[datetime] = []
    for line, row in rows:
        report.rows += 1
        sale = _parse_sale(row, line, errors, partners, tz)
        if sale is not None:
            chunk.append((line, row["id"], sale))
        if len(chunk) >= CHUNK:
            _write_sales(conn, chunk, errors, report, bounds, now)
            chunk = []
            if progress:
                progress(report.rows)
    if chunk:
        _write_sales(conn, chunk, errors, report, bounds, now)
    if progress:
        progress(report.rows)
    if errors:
        errors.sort(key=lambda e: e.line)
        raise ImportRejected(errors)
    if report.inserted:
        mark_open_contests_dirty(session, min(bounds), max(bounds))
    return report


def _parse_sale(row: dict[str, str], line: int, errors: list[RowError], partners: dict[str, int],
                tz: ZoneInfo) -> tuple | None:
    if "__invalid__" in row:
        errors.append(RowError(line, "row.not_an_object"))
        return None
    before = len(errors)
    ext_id = row["id"]
    if not ext_id:
        errors.append(RowError(line, "row.missing_value", {"column": "id"}))
    elif len(ext_id) > 128:
        errors.append(RowError(line, "row.too_long", {"column": "id", "max": 128}))
    code = row["partner"]
    partner_id = partners.get(code)
    if partner_id is None:
        if code:
            errors.append(RowError(line, "row.unknown_partner", {"value": code[:40]}))
        else:
            errors.append(RowError(line, "row.missing_value", {"column": "partner"}))
    occurred = None
    raw_time = row["occurred_at"]
    if raw_time:
        try:
            occurred = parse_datetime_local(raw_time, tz)
        except ValueError:
            errors.append(RowError(line, "row.bad_datetime", {"column": "occurred_at", "value": raw_time[:40]}))
    else:
        errors.append(RowError(line, "row.missing_value", {"column": "occurred_at"}))
    amount = _money(row, "amount", errors, line, required=True)
    margin = _money(row, "margin", errors, line, required=False)
    units = _int_in(row, "units", errors, line, 0, 10**9, required=True)
    satisfaction = _int_in(row, "satisfaction", errors, line, 1, 5, required=False)
    customer = _check_text(row, "customer", errors, line)
    if len(errors) != before:
        return None
    return (partner_id, occurred, amount, units, margin, customer, satisfaction)


def _int_in(row: dict[str, str], name: str, errors: list[RowError], line: int, low: int, high: int,
            required: bool) -> int | None:
    value = row.get(name, "")
    if not value:
        if required:
            errors.append(RowError(line, "row.missing_value", {"column": name}))
        return None
    if not value.isdigit() or not value.isascii():
        if value.startswith("-") and value[1:].isdigit():
            errors.append(RowError(line, "row.out_of_range", {"column": name, "value": value[:40],
                                                              "low": low, "high": high}))
        else:
            errors.append(RowError(line, "row.not_an_integer", {"column": name, "value": value[:40]}))
        return None
    number = int(value)
    if not low <= number <= high:
        errors.append(RowError(line, "row.out_of_range", {"column": name, "value": value[:40],
                                                          "low": low, "high": high}))
        return None
    return number


def _write_sales(conn: Connection, chunk: list[tuple[int, str, tuple]], errors: list[RowError],
                 report: ImportReport, bounds: list[datetime], now: datetime) -> None:
    table = Sale.__table__
    ids = [ext_id for _line, ext_id, _sale in chunk]
    cols = [table.c.ext_id] + [table.c[name] for name in _SALE_FIELDS]
    known: dict[str, tuple] = {r[0]: tuple(r[1:]) for r in conn.execute(select(*cols).where(table.c.ext_id.in_(ids)))}
    new_rows: list[dict[str, Any]] = []
    first_line: dict[str, int] = {}
    lo: datetime | None = None
    hi: datetime | None = None
    for line, ext_id, sale in chunk:
        before = known.get(ext_id)
        if before is not None:
            if before == sale:
                report.unchanged += 1
            else:
                errors.append(RowError(line, "row.conflicting_id", {"value": ext_id[:40],
                                                                    "first": first_line.get(ext_id)}))
            continue
        known[ext_id] = sale
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
        conn.execute(table.insert(), new_rows)
        report.inserted += len(new_rows)
        bounds.extend((lo, hi))  # type: ignore[arg-type]


# --- sales on SQLite: a fast path for well-formed rows and a writer thread -----------------------

SqliteSale = tuple[str, int, str, int, int, int | None, str | None, int | None]
SqliteChunk = list[tuple[int, SqliteSale]]

_SALE_SQLITE_COLUMNS = "ext_id, partner_id, occurred_at, amount_fen, units, margin_fen, customer, satisfaction"
# One statement per chunk: SQLite steps through the whole chunk with the GIL released, while the
# driver's executemany takes the GIL back for every row and then competes with the parsing thread.
_SQLITE_INSERT = (f"INSERT INTO sale ({_SALE_SQLITE_COLUMNS}, imported_at) SELECT "
                  + ", ".join(f"value ->> {i}" for i in range(8))
                  + ", ? FROM json_each(?)")
_SQLITE_KNOWN = (f"SELECT {_SALE_SQLITE_COLUMNS} FROM sale "
                 "WHERE ext_id IN (SELECT value FROM json_each(?))")
_FAST_TIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-5][0-9]:[0-5][0-9]").fullmatch
_FAST_MONEY = re.compile(r"([0-9]{1,13})(?:\.([0-9]{1,2}))?").fullmatch
_SATISFACTION = {"": None, "1": 1, "2": 2, "3": 3, "4": 4, "5": 5}
_MAX_HOURS = 100_000


def _sqlite_time(value: datetime) -> str:
    """The text SQLAlchemy stores for an aware datetime on SQLite (UTC, with microseconds)."""
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")


def _import_sales_sqlite(session: Session, conn: Connection, rows: Iterable[Row], partners: dict[str, int],
                         tz: ZoneInfo, progress: Progress | None, now: datetime) -> ImportReport:
    """`import_sales` on SQLite: this thread parses, a writer thread checks and inserts the chunks.

    Same results as the general path: every row goes through the careful `_parse_sale` unless the
    fast path has proved it well-formed, and the writer uses the caller's transaction.
    """
    report = ImportReport()
    errors: list[RowError] = []
    writer = _SqliteWriter(conn, errors, report, _sqlite_time(now))
    hours: dict[str, str] = {}
    chunk: SqliteChunk = []
    try:
        for line, row in rows:
            report.rows += 1
            sale = _fast_sale(row, partners, tz, hours)
            if sale is None:
                sale = _careful_sqlite_sale(row, line, errors, partners, tz)
            if sale is not None:
                chunk.append((line, sale))
            if len(chunk) >= CHUNK:
                writer.put(chunk)
                chunk = []
                if progress:
                    progress(report.rows)
        if chunk:
            writer.put(chunk)
    finally:
        writer.stop()
    writer.check()
    if progress:
        progress(report.rows)
    if errors:
        errors.sort(key=lambda e: e.line)
        raise ImportRejected(errors)
    if report.inserted:
        lo, hi = min(writer.bounds), max(writer.bounds)
        mark_open_contests_dirty(session, datetime.fromisoformat(lo).replace(tzinfo=UTC),
                                 datetime.fromisoformat(hi).replace(tzinfo=UTC))
    return report


def _careful_sqlite_sale(row: dict[str, str], line: int, errors: list[RowError], partners: dict[str, int],
                         tz: ZoneInfo) -> SqliteSale | None:
    sale = _parse_sale(row, line, errors, partners, tz)
    if sale is None:
        return None
    return (row["id"], sale[0], _sqlite_time(sale[1]), *sale[2:])


def _fast_sale(row: dict[str, str], partners: dict[str, int], tz: ZoneInfo,
               hours: dict[str, str]) -> SqliteSale | None:
    """A well-formed row's values, or None when anything is unusual (then `_parse_sale` decides)."""
    try:
        ext_id = row["id"]
        partner_id = partners.get(row["partner"])
        occurred = _fast_time(row["occurred_at"], tz, hours)
        amount = _fast_fen(row["amount"])
        raw_margin = row["margin"]
        raw_units = row["units"]
        customer = row["customer"] or None
        satisfaction = _SATISFACTION[row["satisfaction"]]
    except KeyError:
        return None
    margin = _fast_fen(raw_margin) if raw_margin else None
    if (not ext_id or len(ext_id) > 128 or partner_id is None or occurred is None or amount is None
            or (raw_margin and margin is None) or not raw_units.isascii() or not raw_units.isdigit()
            or (customer is not None and len(customer) > MAX_TEXT)):
        return None
    units = int(raw_units)
    if units > 10**9:
        return None
    return (ext_id, partner_id, occurred, amount, units, margin, customer, satisfaction)


def _fast_fen(text: str) -> int | None:
    m = _FAST_MONEY(text)
    if m is None:
        return None
    whole, frac = m.groups()
    return int(whole) * 100 + (int(frac.ljust(2, "0")) if frac else 0)


def _fast_time(text: str, tz: ZoneInfo, hours: dict[str, str]) -> str | None:
    """`YYYY-MM-DDTHH:MM:SS` without an offset as SQLite's UTC text, the hour's offset cached."""
    if _FAST_TIME(text) is None:
        return None
    key = text[:13]
    prefix = hours.get(key)
    if prefix is None:
        if len(hours) >= _MAX_HOURS:
            hours.clear()
        prefix = hours[key] = _utc_hour(key, tz)
    if not prefix:
        return None
    return f"{prefix}{text[13:]}.000000"


def _utc_hour(key: str, tz: ZoneInfo) -> str:
    """`YYYY-MM-DD HH` in UTC for a local hour of `tz`, or "" unless the whole hour has one offset
    of whole hours (DST gaps and folds, half-hour zones and bad dates take the careful path)."""
    try:
        start = datetime.fromisoformat(f"{key[:10]}T{key[11:13]}:00:00")
        last = start + timedelta(minutes=59, seconds=59)
        offsets = {moment.replace(tzinfo=tz, fold=fold).utcoffset() for moment in (start, last) for fold in (0, 1)}
        if len(offsets) != 1:
            return ""
        offset = offsets.pop()
        if offset is None or offset % timedelta(hours=1):
            return ""
        return (start - offset).isoformat(" ")[:13]
    except (ValueError, OverflowError):
        return ""


class _SqliteWriter:
    """Checks and inserts chunks of sales on its own thread, over the caller's connection.

    The parsing thread does not touch the connection until `stop`, so the connection is used by
    one thread at a time. A failure is kept and raised by `check`; later chunks are then dropped.
    """

    def __init__(self, conn: Connection, errors: list[RowError], report: ImportReport, imported: str) -> None:
        self._conn = conn
        self._errors = errors
        self._report = report
        self._imported = imported
        self._queue: queue.Queue[SqliteChunk | None] = queue.Queue(maxsize=2)
        self.error: BaseException | None = None
        self.bounds: list[str] = []
        self._thread = threading.Thread(target=self._run, name="sales-writer", daemon=True)
        self._thread.start()

    def put(self, chunk: SqliteChunk) -> None:
        self.check()
        self._queue.put(chunk)

    def stop(self) -> None:
        self._queue.put(None)
        self._thread.join()

    def check(self) -> None:
        if self.error is not None:
            raise self.error

    def _run(self) -> None:
        while (chunk := self._queue.get()) is not None:
            if self.error is None:
                try:
                    self._write(chunk)
                except BaseException as exc:  # noqa: BLE001 - handed to the parsing thread
                    self.error = exc

    def _write(self, chunk: SqliteChunk) -> None:
        ids = [sale[0] for _line, sale in chunk]
        known = {r[0]: tuple(r[1:]) for r in self._conn.exec_driver_sql(_SQLITE_KNOWN, (json.dumps(ids),))}
        repeated = bool(known) or len(set(ids)) != len(ids)
        new_rows = self._sift(chunk, known) if repeated else [sale for _line, sale in chunk]
        if new_rows:
            self._conn.exec_driver_sql(_SQLITE_INSERT, (self._imported, json.dumps(new_rows, ensure_ascii=False)))
            self._report.inserted += len(new_rows)
            times = [sale[2] for sale in new_rows]
            self.bounds.extend((min(times), max(times)))

    def _sift(self, chunk: SqliteChunk, known: dict[str, tuple]) -> list[SqliteSale]:
        """The rows to insert when some ids were seen before: like `_write_sales`."""
        new_rows: list[SqliteSale] = []
        first_line: dict[str, int] = {}
        for line, sale in chunk:
            ext_id = sale[0]
            before = known.get(ext_id)
            if before is not None:
                if before == sale[1:]:
                    self._report.unchanged += 1
                else:
                    self._errors.append(RowError(line, "row.conflicting_id", {"value": ext_id[:40],
                                                                              "first": first_line.get(ext_id)}))
                continue
            known[ext_id] = sale[1:]
            first_line[ext_id] = line
            new_rows.append(sale)
        return new_rows


def mark_open_contests_dirty(session: Session, start: datetime | None = None,
                             end: datetime | None = None) -> None:
    """Invalidate the live standings of open contests (those whose period touches [start, end])."""
    stmt = update(Contest).where(Contest.closed_at.is_(None))
    if start is not None and end is not None:
        stmt = stmt.where(Contest.start_at <= end, Contest.end_at > start)
    session.execute(stmt.values(standings_dirty=True))
