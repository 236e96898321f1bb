"""One sale row checked: its columns, and the careful row-by-row parse whose errors every path reports."""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

from models.imports.cells import DATE_REASONS, check_text, int_in, money
from models.imports.partners import find_partner
from models.imports.report import RowError
from models.values import parse_datetime_local

SALE_COLUMNS = ("id", "partner", "occurred_at", "amount", "units", "margin", "customer", "satisfaction")
SALE_REQUIRED = ("id", "partner", "occurred_at", "amount", "units")


def parse_sale(row: dict[str, str], line: int, errors: list[RowError], partners: dict[str, int],
                tz: ZoneInfo) -> tuple[Any, ...] | None:
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
