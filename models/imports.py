"""Validation and import of partners, targets and sales (CLI files and the HTTP API alike).

A batch with any invalid row imports nothing: every bad row is reported with its line number and
a reason key (rendered by `messages`). Re-importing the same data changes nothing; a sale id that
was imported before with other content is an error (the sales ledger is append-only).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
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
    for line, values in rows:
        n = len(values)
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
        if conn.dialect.name == "sqlite":
            _insert_sqlite(conn, new_rows, now)
        else:
            conn.execute(table.insert(), new_rows)
        report.inserted += len(new_rows)
        bounds.extend((lo, hi))  # type: ignore[arg-type]


_SQLITE_INSERT = ("INSERT INTO sale (ext_id, partner_id, occurred_at, amount_fen, units, margin_fen, customer, "
                  "satisfaction, imported_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)")


def _sqlite_time(value: datetime) -> str:
    """The text SQLAlchemy stores for an aware datetime on SQLite (UTC, with microseconds)."""
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")


def _insert_sqlite(conn: Connection, rows: list[dict[str, Any]], now: datetime) -> None:
    """The driver's own executemany: a million rows spend seconds in per-row parameter processing
    otherwise. The values are exactly what the Core insert would bind (checked by the tests)."""
    imported = _sqlite_time(now)
    conn.exec_driver_sql(_SQLITE_INSERT, [
        (r["ext_id"], r["partner_id"], _sqlite_time(r["occurred_at"]), r["amount_fen"], r["units"], r["margin_fen"],
         r["customer"], r["satisfaction"], imported) for r in rows])


def mark_open_contests_dirty(session: Session, start: datetime | None = None,
                             end: datetime | None = None) -> None:
    """Invalidate the live standings of open contests (those whose period touches [start, end])."""
    stmt = update(Contest).where(Contest.closed_at.is_(None))
    if start is not None and end is not None:
        stmt = stmt.where(Contest.start_at <= end, Contest.end_at > start)
    session.execute(stmt.values(standings_dirty=True))
