"""Checks of one value of a row, each adding a `RowError` and giving None when the value is bad."""

from __future__ import annotations

from datetime import date

from models.imports.report import RowError
from models.values import parse_day, parse_fen

DATE_REASONS = {"year_last": "row.date_year_last", "no_such_day": "row.date_no_such_day"}
MAX_TEXT = 200


def _given(row: dict[str, str], name: str, errors: list[RowError], line: int, required: bool) -> str | None:
    """The column's value, or None when it is empty (an error if the column is required)."""
    value = row.get(name, "")
    if not value:
        if required:
            errors.append(RowError(line, "row.missing_value", {"column": name}))
        return None
    return value


def check_text(row: dict[str, str], name: str, errors: list[RowError], line: int,
                required: bool = False) -> str | None:
    value = _given(row, name, errors, line, required)
    if value is None:
        return None
    if len(value) > MAX_TEXT:
        errors.append(RowError(line, "row.too_long", {"column": name, "max": MAX_TEXT}))
        return None
    return value


def parse_date(row: dict[str, str], name: str, errors: list[RowError], line: int,
                required: bool = False) -> date | None:
    value = _given(row, name, errors, line, required)
    if value is None:
        return None
    try:
        return parse_day(value)
    except ValueError as exc:
        errors.append(RowError(line, DATE_REASONS.get(exc.args[0], "row.bad_date"),
                               {"column": name, "value": value[:40]}))
        return None


def money(row: dict[str, str], name: str, errors: list[RowError], line: int, required: bool) -> int | None:
    value = _given(row, name, errors, line, required)
    if value is None:
        return None
    try:
        return parse_fen(value)
    except ValueError as exc:
        errors.append(RowError(line, f"row.money_{exc.args[0]}", {"column": name, "value": value[:40]}))
        return None


def int_in(row: dict[str, str], name: str, errors: list[RowError], line: int, low: int, high: int,
            required: bool) -> int | None:
    value = _given(row, name, errors, line, required)
    if value is None:
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
