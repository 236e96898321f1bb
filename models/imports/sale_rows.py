"""One sale row checked: its columns, and the careful row-by-row parse whose errors every path reports."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from models.imports.cells import DATE_REASONS, check_text, int_in, money
from models.imports.partners import find_partner
from models.imports.report import RowError
from models.values import parse_datetime_local, parse_fen

SALE_COLUMNS = ("id", "partner", "occurred_at", "amount", "units", "margin", "customer", "satisfaction")
SALE_REQUIRED = ("id", "partner", "occurred_at", "amount", "units")
# Optional: a correcting row names the sale it cancels (`models.imports.sale_reversals`). A file with
# these columns takes the general path (the SQLite bulk loader reads the eight above only).
REVERSAL_COLUMNS = ("reverses", "reason")
SALE_FILE_COLUMNS = SALE_COLUMNS + REVERSAL_COLUMNS
MAX_REASON = 500
# A checked plain sale: (partner_id, occurred, amount, units, margin, customer, satisfaction).
PlainSale = tuple[Any, ...]


def file_columns(columns: dict[str, int]) -> tuple[str, ...]:
    """The columns to read of a sales file with this header: the optional ones only when present
    (a file without them keeps the quick whole-row reads of `models.imports.records`)."""
    return SALE_COLUMNS + tuple(name for name in REVERSAL_COLUMNS if name in columns)


@dataclass(frozen=True)
class ReversalRow:
    """A row with `reverses`, checked on its own; what it leaves empty comes from the original."""

    ref: str
    partner_id: int
    occurred: datetime | None
    amount: int | None
    units: int | None
    margin: int | None
    customer: str | None
    satisfaction: int | None
    reason: str | None


def parse_sale(row: dict[str, str], line: int, errors: list[RowError], partners: dict[str, int],
                tz: ZoneInfo) -> PlainSale | ReversalRow | None:
    """A plain sale as (partner_id, occurred, amount, units, margin, customer, satisfaction), or a
    `ReversalRow` for a row with `reverses`; None (and its errors added) for a bad row."""
    if "__invalid__" in row:
        errors.append(RowError(line, "row.not_an_object"))
        return None
    reversing = bool(row.get("reverses"))
    before = len(errors)
    if row.get("reason") and not reversing:
        errors.append(RowError(line, "row.reason_without_reverses"))
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
    if reversing:
        return _reversal(row, line, errors, partner_id, before, tz)
    occurred = None
    raw_time = row["occurred_at"]
    if raw_time:
        try:
            occurred = parse_datetime_local(raw_time, tz)
        except ValueError as exc:
            key = DATE_REASONS.get(exc.args[0] if exc.args else "", "row.bad_datetime")
            errors.append(RowError(line, key, {"column": "occurred_at", "value": raw_time[:40]}))
    else:
        errors.append(RowError(line, "row.missing_value", {"column": "occurred_at"}))
    amount = money(row, "amount", errors, line, required=True)
    margin = money(row, "margin", errors, line, required=False)
    units = int_in(row, "units", errors, line, 0, 10**9, required=True)
    satisfaction = int_in(row, "satisfaction", errors, line, 1, 5, required=False)
    customer = check_text(row, "customer", errors, line)
    if len(errors) != before:
        return None
    return (partner_id, occurred, amount, units, margin, customer, satisfaction)


def _reversal(row: dict[str, str], line: int, errors: list[RowError], partner_id: int | None, before: int,
              tz: ZoneInfo) -> ReversalRow | None:
    """A correcting row: amount, units and margin as negatives (or empty), occurred_at optional."""
    ref = row["reverses"]
    if len(ref) > 128:
        errors.append(RowError(line, "row.too_long", {"column": "reverses", "max": 128}))
    occurred = None
    if raw_time := row["occurred_at"]:
        try:
            occurred = parse_datetime_local(raw_time, tz)
        except ValueError as exc:
            key = DATE_REASONS.get(exc.args[0] if exc.args else "", "row.bad_datetime")
            errors.append(RowError(line, key, {"column": "occurred_at", "value": raw_time[:40]}))
    amount = _signed_fen(row, "amount", errors, line)
    margin = _signed_fen(row, "margin", errors, line)
    units = _signed_units(row, errors, line)
    satisfaction = int_in(row, "satisfaction", errors, line, 1, 5, required=False)
    customer = check_text(row, "customer", errors, line)
    reason = row.get("reason") or None
    if reason is not None and len(reason) > MAX_REASON:
        errors.append(RowError(line, "row.too_long", {"column": "reason", "max": MAX_REASON}))
    if len(errors) != before or partner_id is None:
        return None
    return ReversalRow(ref, partner_id, occurred, amount, units, margin, customer, satisfaction, reason)


def _signed_fen(row: dict[str, str], name: str, errors: list[RowError], line: int) -> int | None:
    """A reversal's amount as typed: `-3000`, `-¥3,000.00` (or `3000`, which then is not the negative)."""
    value = row.get(name, "")
    if not value:
        return None
    negative = value[0] in "-−"
    try:
        fen = parse_fen(value[1:] if negative else value)
    except ValueError as exc:
        errors.append(RowError(line, f"row.money_{exc.args[0]}", {"column": name, "value": value[:40]}))
        return None
    return -fen if negative else fen


def _signed_units(row: dict[str, str], errors: list[RowError], line: int) -> int | None:
    value = row.get("units", "")
    if not value:
        return None
    negative = value[0] in "-−"
    digits = value[1:] if negative else value
    if not digits.isascii() or not digits.isdigit() or len(digits) > 10:
        errors.append(RowError(line, "row.not_an_integer", {"column": "units", "value": value[:40]}))
        return None
    return -int(digits) if negative else int(digits)
