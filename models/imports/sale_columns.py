"""Whole columns of sale values checked and converted at once (one C-level pass each), for the SQLite loader.

Any value of an unusual shape makes a check give None; the chunk then takes the careful
row-by-row path (`models.imports.sale_rows.parse_sale`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from operator import itemgetter, methodcaller
from zoneinfo import ZoneInfo


def _each_line(pattern: str) -> Callable[[str], re.Match[str] | None]:
    """A fullmatch of newline-separated values that each match `pattern` (which has no newline)."""
    return re.compile(f"(?:{pattern}\n)*{pattern}").fullmatch


def all_match(each_line: Callable[[str], re.Match[str] | None], values: Sequence[str]) -> bool:
    """Whether every value matches: one regex pass over the values joined by newlines, a quarter of
    the cost of one call per value (a value with a newline in it adds a line, and fails)."""
    text = "\n".join(values)
    return text.count("\n") == len(values) - 1 and each_line(text) is not None


_TIME = r"[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-5][0-9]:[0-5][0-9]"
TIMES = _each_line(_TIME)
_FAST_MONEY = re.compile(r"([0-9]{1,13})(?:\.([0-9]{1,2}))?").fullmatch
_MONEY_2DPS = _each_line(r"[0-9]{1,13}\.[0-9]{2}")
_MONEY_2DPS_OR_EMPTY = _each_line(r"(?:[0-9]{1,13}\.[0-9]{2})?")
UNITS = _each_line(r"[0-9]{1,10}")
_NO_DOT = methodcaller("replace", ".", "")
HOUR = itemgetter(slice(0, 13))
SATISFACTION = {"": None, "1": 1, "2": 2, "3": 3, "4": 4, "5": 5}
BAD = object()


def sqlite_time(value: datetime) -> str:
    """The text SQLAlchemy stores for an aware datetime on SQLite (UTC, with microseconds)."""
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")


def fen_column(texts: Sequence[str], optional: bool = False) -> list[int | None] | None:
    """Amounts in CNY as fen; None if any is unusual (then the careful path decides)."""
    if all_match(_MONEY_2DPS, texts):
        return list(map(int, map(_NO_DOT, texts)))
    if optional and all_match(_MONEY_2DPS_OR_EMPTY, texts):
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


def utc_hour(key: str, tz: ZoneInfo) -> str:
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
