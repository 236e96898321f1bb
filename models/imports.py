"""Validation and import of partners, targets and sales (CLI files and the HTTP API alike).

A batch with any invalid row imports nothing: every bad row is reported with its line number and
a reason key (rendered by `messages`). Re-importing the same data changes nothing; a sale id that
was imported before with other content is an error (the sales ledger is append-only).
"""

from __future__ import annotations

import ctypes
import gc
import json
import marshal
import multiprocessing
import os
import pickle
import re
import signal
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from itertools import islice, repeat
from operator import itemgetter, methodcaller
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, event, select, update
from sqlmodel import Session

from models.db import FOREIGN_KEYS_OFF, foreign_keys_back_on
from models.errors import DataError
from models.tables import MONTHLY_END, MONTHLY_START, ROLES, Contest, Partner, Sale, Target, Team
from models.values import LOCALES, clean_name, normal_code, parse_datetime_local, parse_day, parse_fen, utcnow

PARTNER_COLUMNS = ("code", "name", "team", "region", "city_tier", "industry", "size", "joined_on", "role",
                   "locale")
TARGET_COLUMNS = ("partner", "period_start", "period_end", "target")
SALE_COLUMNS = ("id", "partner", "occurred_at", "amount", "units", "margin", "customer", "satisfaction")
SALE_REQUIRED = ("id", "partner", "occurred_at", "amount", "units")
# Values of the partners file as people type them (the English words are the stored ones).
ROLE_WORDS = {"经销商": "dealer", "队长": "captain", "管理员": "admin", "渠道经理": "admin"}
CITY_TIERS = {"1": 1, "2": 2, "3": 3, "一线": 1, "二线": 2, "三线": 3, "一线城市": 1, "二线城市": 2, "三线城市": 3}
LOCALE_WORDS = {"中文": "zh", "英文": "en"}
MONTHLY_WORDS = ("monthly", "每月")  # a targets row's period_start for a recurring monthly amount
# `parse_day`'s reasons as row error keys.
_DATE_REASONS = {"year_last": "row.date_year_last", "no_such_day": "row.date_no_such_day"}
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
    """The batch had bad rows; nothing was imported. `count` is the number of bad rows (a row
    can have several errors)."""

    def __init__(self, errors: list[RowError]) -> None:
        self.errors = errors
        super().__init__("error.import_rejected", count=len(self.by_line()))

    def by_line(self) -> list[tuple[int, list[RowError]]]:
        """Each bad row once, in file order, with all of its errors."""
        rows: dict[int, list[RowError]] = {}
        for e in self.errors:
            rows.setdefault(e.line, []).append(e)
        return sorted(rows.items())


def rows_from_csv(columns: dict[str, int], rows: Iterable[tuple[int, list[str]]],
                  names: tuple[str, ...]) -> CsvRecords:
    """Turn positional CSV rows into dicts of the known columns (absent columns read as empty)."""
    return CsvRecords(columns, rows, names)


def _dicts_from_csv(columns: dict[str, int], rows: Iterable[tuple[int, list[str]]],
                    names: tuple[str, ...]) -> Iterator[Row]:
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


def partner_ids(session: Session) -> dict[str, int]:
    """Partner ids by code, for the imports' lookups: each stored code, and its `normal_code` (a code
    stored before codes were normalised is found both ways). Look a typed code up with `find_partner`."""
    ids: dict[str, int] = {}
    for code, partner_id in session.exec(select(Partner.code, Partner.id)).all():
        ids[code] = partner_id
        ids.setdefault(normal_code(code), partner_id)
    return ids


def find_partner(partners: dict[str, int], code: str) -> int | None:
    return partners.get(code) or partners.get(normal_code(code))


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
        return parse_day(value)
    except ValueError as exc:
        errors.append(RowError(line, _DATE_REASONS.get(exc.args[0], "row.bad_date"),
                               {"column": name, "value": value[:40]}))
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
    existing: dict[str, Partner] = {}
    for stored in session.exec(select(Partner)).scalars():
        existing.setdefault(normal_code(stored.code), stored)
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
    # names are shown on public boards: no bidi overrides, zero-width characters or line breaks
    row = {**row, "name": clean_name(row.get("name", "")), "team": clean_name(row.get("team", ""))}
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
    if code:
        if len(code) > 64 or any(c.isspace() for c in code):
            errors.append(RowError(line, "row.bad_code", {"value": code[:40]}))
        values["code"] = normal_code(code)
    tier = row.get("city_tier", "")
    values["city_tier"] = None
    if tier:
        if tier in CITY_TIERS:
            values["city_tier"] = CITY_TIERS[tier]
        else:
            errors.append(RowError(line, "row.bad_city_tier", {"value": tier[:40]}))
    role = row.get("role") or "dealer"
    role = ROLE_WORDS.get(role, role.lower())
    if role not in ROLES:
        errors.append(RowError(line, "row.bad_role", {"value": role[:40]}))
    values["role"] = role
    locale = row.get("locale") or default_locale
    locale = LOCALE_WORDS.get(locale, locale.lower())
    if locale not in LOCALES:
        errors.append(RowError(line, "row.bad_locale", {"value": locale[:40]}))
    values["locale"] = locale
    return values


# --- targets ----------------------------------------------------------------------------------


def import_targets(session: Session, rows: Iterable[Row]) -> ImportReport:
    """Add or update targets, one per partner and period."""
    report = ImportReport()
    errors: list[RowError] = []
    partners = partner_ids(session)
    parsed: dict[tuple[int, date, date], tuple[int, int]] = {}
    for line, row in rows:
        report.rows += 1
        before = len(errors)
        if "__invalid__" in row:
            errors.append(RowError(line, "row.not_an_object"))
            continue
        code = _check_text(row, "partner", errors, line, required=True)
        partner_id = find_partner(partners, code) if code else None
        if code and partner_id is None:
            errors.append(RowError(line, "row.unknown_partner", {"value": code[:40]}))
        monthly = row.get("period_start", "").strip().lower() in MONTHLY_WORDS
        if monthly:  # a recurring monthly amount (`models.tables.Target.monthly`); period_end stays empty
            start, end = MONTHLY_START, MONTHLY_END
        else:
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
            session.add(Target(partner_id=key[0], period_start=key[1], period_end=key[2], target_fen=target,
                               monthly=(key[1], key[2]) == (MONTHLY_START, MONTHLY_END)))
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
    if conn.dialect.name == "sqlite":
        return _import_sales_sqlite(session, conn, rows, tz, progress, now)
    partners = partner_ids(session)
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
    partner_id = find_partner(partners, code) if code else None
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
        except ValueError as exc:
            key = _DATE_REASONS.get(exc.args[0] if exc.args else "", "row.bad_datetime")
            errors.append(RowError(line, key, {"column": "occurred_at", "value": raw_time[:40]}))
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


# --- sales on SQLite: whole columns at a time, one executemany per chunk ---------------------------
#
# Per chunk, each column is checked and converted with one C-level pass (`map` over a precompiled
# regex, `int`, a dict); only a chunk with something unusual in it goes row by row through the
# careful `_parse_sale`, so the errors (and the values) are exactly those of the general path. The
# rows are inserted with `ON CONFLICT (ext_id) DO NOTHING`: when every row went in (the usual
# case) no id had been seen before; otherwise the chunk's ids are looked up and compared.
#
# A CSV file (the CLI) is imported in bulk mode, see `_begin_bulk`: foreign-key checks off for the
# transaction, the garbage collector paused, and for a file of at least half as many rows as the
# table the (partner, customer) index built once at the end instead of row by row.

SqliteSale = tuple[str, int, str, int, int, int | None, str | None, int | None]

SQLITE_CHUNK = 10_000
_SALE_SQLITE_COLUMNS = "ext_id, partner_id, occurred_at, amount_fen, units, margin_fen, customer, satisfaction"
_SQLITE_INSERT = (f"INSERT INTO sale ({_SALE_SQLITE_COLUMNS}, imported_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
                  "ON CONFLICT (ext_id) DO NOTHING")
_SQLITE_KNOWN = (f"SELECT id, {_SALE_SQLITE_COLUMNS} FROM sale "
                 "WHERE ext_id IN (SELECT value FROM json_each(?))")


def _each_line(pattern: str) -> Callable[[str], re.Match[str] | None]:
    """A fullmatch of newline-separated values that each match `pattern` (which has no newline)."""
    return re.compile(f"(?:{pattern}\n)*{pattern}").fullmatch


def _all_match(each_line: Callable[[str], re.Match[str] | None], values: Sequence[str]) -> bool:
    """Whether every value matches: one regex pass over the values joined by newlines, a quarter of
    the cost of one call per value (a value with a newline in it adds a line, and fails)."""
    text = "\n".join(values)
    return text.count("\n") == len(values) - 1 and each_line(text) is not None


_TIME = r"[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-5][0-9]:[0-5][0-9]"
_TIMES = _each_line(_TIME)
_FAST_MONEY = re.compile(r"([0-9]{1,13})(?:\.([0-9]{1,2}))?").fullmatch
_MONEY_2DPS = _each_line(r"[0-9]{1,13}\.[0-9]{2}")
_MONEY_2DPS_OR_EMPTY = _each_line(r"(?:[0-9]{1,13}\.[0-9]{2})?")
_UNITS = _each_line(r"[0-9]{1,10}")
_NO_DOT = methodcaller("replace", ".", "")
_HOUR = itemgetter(slice(0, 13))
_SATISFACTION = {"": None, "1": 1, "2": 2, "3": 3, "4": 4, "5": 5}
_BAD = object()
_MAX_HOURS = 100_000
_DEFERRED_INDEX = "ix_sale_partner_customer"
_CAN_FORK = "fork" in multiprocessing.get_all_start_methods()


class CsvRecords:
    """`rows_from_csv`'s rows: an iterator of (line, dict) that also keeps the positional rows, so
    that `import_sales` can take whole columns without building a dict per row."""

    def __init__(self, columns: dict[str, int], rows: Iterable[tuple[int, list[str]]], names: tuple[str, ...]):
        self.columns = columns
        self.raw = rows
        self.names = names
        self._dicts: Iterator[Row] | None = None

    def __iter__(self) -> CsvRecords:
        return self

    def __next__(self) -> Row:
        if self._dicts is None:
            self._dicts = _dicts_from_csv(self.columns, self.raw, self.names)
        return next(self._dicts)


def _sqlite_time(value: datetime) -> str:
    """The text SQLAlchemy stores for an aware datetime on SQLite (UTC, with microseconds)."""
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")


class _SqliteSales:
    """The SQLite path of `import_sales`: chunks of positional values in, inserted rows out."""

    def __init__(self, conn: Connection, partners: dict[str, int], tz: ZoneInfo, now: datetime,
                 report: ImportReport, errors: list[RowError], file_share: Callable[[], float | None] | None = None,
                 ) -> None:
        self.cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        self.file_share = file_share
        self.deferred: list[str] = []  # CREATE INDEX statements to run at the end
        self.partners = partners
        self.tz = tz
        self.imported = _sqlite_time(now)
        self.report = report
        self.errors = errors
        self.hours: dict[str, str] = {}
        self.lo: str | None = None
        self.hi: str | None = None

    def parse(self, lines: list[int], rows: list[Sequence[str] | None]) -> Parsed:
        """Rows of the eight SALE_COLUMNS values (unstripped), with their line numbers: the sales
        (None for a bad row) and the chunk's errors."""
        errors = self.errors = []
        sales = self._columns(rows)
        return lines, self._careful(lines, rows) if sales is None else sales, errors

    def _columns(self, rows: list[tuple[str, ...]]) -> list[tuple] | None:
        """The chunk's sales if every value is of the usual shape, else None."""
        if None in rows:
            return None
        # Only ids and customers are stripped: any other value with spaces around it fails its
        # column's check below (a pattern, or a lookup) and the careful path strips it.
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
        fen = _fen_column(amounts)
        if fen is None:
            return None
        margin_fen = _fen_column(margins, optional=True)
        if margin_fen is None:
            return None
        if not _all_match(_UNITS, units):
            return None
        unit_counts = list(map(int, units))
        if max(unit_counts) > 10**9:
            return None
        stars = list(map(_SATISFACTION.get, ratings, repeat(_BAD)))
        if _BAD in stars:
            return None
        if max(map(len, customers)) > MAX_TEXT:
            return None
        buyers = [c or None for c in customers]
        return list(zip(ids, partner_ids, utc_times, fen, unit_counts, margin_fen, buyers, stars,
                        repeat(self.imported), strict=False))

    def _times(self, times: list[str]) -> list[str] | None:
        """`YYYY-MM-DDTHH:MM:SS` without an offset as SQLite's UTC text, each hour's offset cached."""
        if not _all_match(_TIMES, times):
            return None
        hours = self.hours
        keys = list(map(_HOUR, times))
        for key in set(keys).difference(hours):
            if len(hours) >= _MAX_HOURS:
                hours.clear()
            hours[key] = _utc_hour(key, self.tz)
        prefixes = list(map(hours.__getitem__, keys))
        if "" in prefixes:
            return None
        return [f"{prefix}{text[13:]}.000000" for prefix, text in zip(prefixes, times, strict=True)]

    def _careful(self, lines: list[int], rows: list[tuple[str, ...]]) -> list[tuple]:
        sales = []
        for line, values in zip(lines, rows, strict=True):
            row = (dict(zip(SALE_COLUMNS, map(str.strip, values), strict=True)) if values is not None
                   else {"__invalid__": "not_an_object"})
            sale = _parse_sale(row, line, self.errors, self.partners, self.tz)
            if sale is None:
                sales.append(None)
            else:
                sales.append((row["id"], sale[0], _sqlite_time(sale[1]), *sale[2:], self.imported))
        return sales

    def write(self, lines: list[int], sales: list[tuple | None]) -> None:
        good = [sale for sale in sales if sale is not None]
        if not good:
            return
        before = self.cursor.execute("SELECT max(id) FROM sale").fetchone()[0] or 0
        if self.file_share is not None:
            self._maybe_defer_index(before, len(lines))
        self.cursor.executemany(_SQLITE_INSERT, good)
        inserted = self.cursor.rowcount
        self.report.inserted += inserted
        if inserted == len(good):
            self._bounds(sale[2] for sale in good)
        else:
            self._sift(lines, sales, before)

    def _maybe_defer_index(self, stored: int, rows: int) -> None:
        """Decided once, at the first chunk of a file: drop the (partner, customer) index, to build it
        once at the end, if the rest of the file holds at least half as many rows as the table
        (the largest id: the ledger is append-only).

        Its build sorts the whole table, while keeping it costs per row inserted, more the larger
        the index. Measured (whole imports): 1,000,000 rows into an empty table, ~3 s kept against
        ~1.3 s built; into a table of 1,000,000, 11.6-12.3 s kept against 9.3-9.6 s dropped and
        built (2,000,000 rows); 500,000 into 1,000,000, 5.3 s either way: the break-even."""
        share = self.file_share() if self.file_share is not None else None
        self.file_share = None
        if not share or rows < SQLITE_CHUNK:
            return
        remaining = rows / share - rows
        if remaining < max(stored / 2, SQLITE_CHUNK):
            return
        sql = self.cursor.execute("SELECT sql FROM sqlite_master WHERE type = 'index' AND name = ?",
                                  (_DEFERRED_INDEX,)).fetchone()
        if sql is None or not sql[0]:
            return
        self.cursor.execute(f"DROP INDEX {_DEFERRED_INDEX}")
        self.deferred.append(sql[0])

    def build_deferred(self) -> None:
        """Create the indexes dropped for the import, in the same transaction."""
        while self.deferred:
            self.cursor.execute(self.deferred.pop())

    def _bounds(self, times: Iterable[str]) -> None:
        times = list(times)
        if times:
            lo, hi = min(times), max(times)
            self.lo = lo if self.lo is None else min(self.lo, lo)
            self.hi = hi if self.hi is None else max(self.hi, hi)

    def _sift(self, lines: list[int], sales: list[tuple | None], before: int) -> None:
        """Some ids were there already (or twice in the chunk): like `_write_sales`, after the fact."""
        ids = [sale[0] for sale in sales if sale is not None]
        stored = {r[1]: (r[0], tuple(r[2:])) for r in self.cursor.execute(_SQLITE_KNOWN, (json.dumps(ids),))}
        first_line: dict[str, int] = {}
        new_times = []
        for line, sale in zip(lines, sales, strict=True):
            if sale is None:
                continue
            ext_id = sale[0]
            rowid, values = stored[ext_id]
            if rowid > before and ext_id not in first_line:
                first_line[ext_id] = line  # this row went in
                new_times.append(sale[2])
            elif values == sale[1:-1]:
                self.report.unchanged += 1
            else:
                self.errors.append(RowError(line, "row.conflicting_id", {"value": ext_id[:40],
                                                                          "first": first_line.get(ext_id)}))
        self._bounds(new_times)


def _fen_column(texts: list[str], optional: bool = False) -> list[int | None] | None:
    """Amounts in CNY as fen; None if any is unusual (then the careful path decides)."""
    if _all_match(_MONEY_2DPS, texts):
        return list(map(int, map(_NO_DOT, texts)))
    if optional and _all_match(_MONEY_2DPS_OR_EMPTY, texts):
        return [int(text.replace(".", "")) if text else None for text in texts]
    fen = [_fast_fen(text) if text or not optional else None for text in texts]
    if optional:
        return None if any(f is None and t for f, t in zip(fen, texts, strict=True)) else fen
    return None if None in fen else fen


def _fast_fen(text: str) -> int | None:
    m = _FAST_MONEY(text)
    if m is None:
        return None
    whole, frac = m.groups()
    return int(whole) * 100 + (int(frac.ljust(2, "0")) if frac else 0)


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


def _import_sales_sqlite(session: Session, conn: Connection, rows: Iterable[Row], tz: ZoneInfo,
                         progress: Progress | None, now: datetime) -> ImportReport:
    """`import_sales` on SQLite, with the same results as the general path."""
    bulk = isinstance(rows, CsvRecords) and _begin_bulk(conn)
    if not bulk:
        _hold_write_lock(conn)
    partners = partner_ids(session)
    report = ImportReport()
    errors: list[RowError] = []
    share = rows.raw.share_read if bulk and hasattr(rows.raw, "share_read") else None  # type: ignore[union-attr]
    writer = _SqliteSales(conn, partners, tz, now, report, [], file_share=share)
    chunks = _parsed_chunks(rows, writer)
    with _gc_paused(bulk):
        try:
            for lines, sales, chunk_errors in chunks:
                report.rows += len(lines)
                errors.extend(chunk_errors)
                writer.errors = errors
                writer.write(lines, sales)
                if progress:
                    progress(report.rows)
        except BaseException:
            chunks.close()  # a forked parser stops now, not when the traceback is let go of
            # The transaction is lost anyway (and a rollback brings the index back); best effort.
            with suppress(Exception):
                writer.build_deferred()
            raise
        writer.build_deferred()  # bad rows too: never leave the table without its index
    if progress:
        progress(report.rows)
    if errors:
        errors.sort(key=lambda e: e.line)
        raise ImportRejected(errors)
    if report.inserted:
        mark_open_contests_dirty(session, datetime.fromisoformat(writer.lo).replace(tzinfo=UTC),  # type: ignore
                                 datetime.fromisoformat(writer.hi).replace(tzinfo=UTC))  # type: ignore
    return report


Parsed = tuple[list[int], list[tuple | None], list[RowError]]


def _begin_bulk(conn: Connection) -> bool:
    """Start the import's transaction with foreign-key checks off, if possible; whether it did.

    `PRAGMA foreign_keys` cannot change inside a transaction, so this only happens when the
    caller's transaction has not written yet (and the engine is one of `make_engine`'s, whose
    pool turns the checks back on when the connection is checked in, after the commit or
    rollback). The checks are redundant here: every partner id comes from the code lookup, and
    `BEGIN IMMEDIATE` takes the write lock *before* that lookup, so no other connection can
    delete a partner between the lookup and the commit. Everything else the caller does in the
    same transaction runs without the checks too (the CLI only refreshes standings).
    """
    dbapi = conn.connection.dbapi_connection
    if (dbapi is None or dbapi.in_transaction
            or not event.contains(conn.engine, "checkin", foreign_keys_back_on)):
        return False
    cursor = dbapi.cursor()
    try:
        if cursor.execute("PRAGMA foreign_keys").fetchone()[0]:
            conn.connection.info[FOREIGN_KEYS_OFF] = True
            cursor.execute("PRAGMA foreign_keys=OFF")
        cursor.execute("BEGIN IMMEDIATE")
    finally:
        cursor.close()
    return True


def _hold_write_lock(conn: Connection) -> None:
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


def _parsed_chunks(rows: Iterable[Row], parser: _SqliteSales) -> Iterator[Parsed]:
    """The chunks parsed: the first one here; for a CSV file of more, the rest in a forked process
    while this one inserts (SQLite's work and Python's parsing then take a core each)."""
    chunks = _positional_chunks(rows)
    first = next(chunks, None)
    if first is None:
        return
    yield parser.parse(*first)
    if len(first[0]) < SQLITE_CHUNK or not isinstance(rows, CsvRecords) or not _CAN_FORK:
        for chunk in chunks:
            yield parser.parse(*chunk)
        return
    yield from _forked(chunks, parser)


def _forked(chunks: Iterator[tuple[list[int], list[Sequence[str] | None]]], parser: _SqliteSales) -> Iterator[Parsed]:
    context = multiprocessing.get_context("fork")
    receive, send = context.Pipe(duplex=False)
    child = context.Process(target=_parse_in_child, args=(chunks, parser, send, receive, os.getpid()),
                            name="mianzi-sales-parser", daemon=True)
    child.start()
    send.close()
    try:
        while True:
            try:
                kind, *body = marshal.loads(receive.recv_bytes())
            except EOFError as exc:
                raise RuntimeError("the sales parser process ended early") from exc
            if kind == "rows":
                lines, sales, errors = body
                yield lines, sales, pickle.loads(errors) if errors else []
            elif kind == "end":
                return
            elif kind == "data":
                raise DataError(body[0], **pickle.loads(body[1]))
            else:
                raise RuntimeError(f"the sales parser process failed: {body[0]}")
    finally:
        # Whatever ended the import (the end of the file, a bad row, an error here): the only
        # reading end closes, so a parser still sending gets EPIPE and ends by itself.
        receive.close()
        child.join(5)
        if child.is_alive():
            child.terminate()
            child.join()


_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def _die_with_parent(parent: int) -> None:
    """In the forked parser: end with the importing process, even when that one is killed outright.

    On Linux the kernel sends SIGKILL to this process when the thread that forked it ends (the
    importing thread, which lives until the import ends); elsewhere the EPIPE of the closed pipe
    ends it at its next send. The parent may have died before the request was made: then its
    pid is no longer our parent's.
    """
    with suppress(Exception):  # not Linux, or no libc to ask: the pipe is the only way
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:
        os._exit(1)


def _parse_in_child(chunks: Iterator[tuple[list[int], list[Sequence[str] | None]]], parser: _SqliteSales,
                    send: Any, receive: Any, parent: int) -> None:
    """Runs in the forked process: parse every chunk and send it; never touches the database.

    It dies with the importing process (`_die_with_parent`), and closes its inherited copy of
    the pipe's reading end, so that a send with nobody left to read fails instead of blocking.
    The heap inherited from the importing process is frozen: otherwise every full collection
    walks it (measured: ~3 s per million rows). The rows travel as `marshal` data (plain
    strings, ints and None; a quarter of pickle's cost to write), the rare errors pickled."""
    _die_with_parent(parent)
    receive.close()
    gc.freeze()
    try:
        for chunk in chunks:
            lines, sales, errors = parser.parse(*chunk)
            send.send_bytes(marshal.dumps(("rows", lines, sales, pickle.dumps(errors) if errors else b"")))
        send.send_bytes(marshal.dumps(("end",)))
    except BrokenPipeError:
        pass  # the importing process stopped reading (it failed); nothing to tell it
    except DataError as exc:
        send.send_bytes(marshal.dumps(("data", exc.key, pickle.dumps(exc.params))))
    except BaseException as exc:  # noqa: BLE001 - reported to the importing process
        send.send_bytes(marshal.dumps(("crash", repr(exc))))
    finally:
        send.close()


def _positional_chunks(rows: Iterable[Row]) -> Iterator[tuple[list[int], list[Sequence[str] | None]]]:
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


def _csv_chunks(records: CsvRecords) -> Iterator[tuple[list[int], list[Sequence[str] | None]]]:
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


def mark_open_contests_dirty(session: Session, start: datetime | None = None,
                             end: datetime | None = None) -> None:
    """Invalidate the live standings of open contests (those whose period touches [start, end])."""
    stmt = update(Contest).where(Contest.closed_at.is_(None))
    if start is not None and end is not None:
        stmt = stmt.where(Contest.start_at <= end, Contest.end_at > start)
    session.execute(stmt.values(standings_dirty=True))
