"""Parsing and converting the values of the program: money, times, durations, scores, shown text."""

from __future__ import annotations

import re
import unicodedata
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from models.errors import DataError

# The languages Mianzi speaks (the words of each are in `messages/<locale>/`); a partner's `locale` is one.
LOCALES = ("zh", "en")
DEFAULT_LOCALE = "zh"
# A language as people name it (a partners file's `locale` column, `语言 中文` in chat) → its code.
LOCALE_WORDS = {"中文": "zh", "英文": "en", "chinese": "zh", "english": "en"}


def locale_word(value: str) -> str:
    """`中文`, `English`, `zh` → `zh` / `en`; anything else is returned lower-cased (and then refused)."""
    value = value.strip().lower()
    return LOCALE_WORDS.get(value, value)

_MONEY = re.compile(r"^(\d{1,13})(?:\.(\d{1,2}))?$")
# Amounts as people type them: `¥12,000.50`, `￥12000`, `12000元`, `1.2万`; commas only as groups of three.
_TYPED_MONEY = re.compile(r"^[¥￥]?\s*(-?)\s*[¥￥]?\s*(\d{1,3}(?:,\d{3})+|\d+)(?:\.(\d+))?\s*(万?)\s*元?$")
_ANY_MONEY = re.compile(r"^[¥￥]?\s*-?\s*[¥￥]?\s*[\d.,]*\d[\d.,]*\s*万?\s*元?$")
# Dates as people type them: year first, `2026-12-1`, `2026/12/01`, `2026.12.1`, `2026年12月1日`, and an
# optional time `8:00` or `08:00:00` after a space (or a `T`, or right after `日`).
_TYPED_DAY = (r"(?P<y>\d{4})(?:(?P<sep>[-/.])(?P<m>\d{1,2})(?P=sep)(?P<d>\d{1,2})"
              r"|\s*年\s*(?P<cm>\d{1,2})\s*月\s*(?P<cd>\d{1,2})\s*日)")
_TYPED_TIME = r"(?:(?:\s+|T|(?<=日))(?P<H>\d{1,2})[:：](?P<M>\d{2})(?:[:：](?P<S>\d{2}))?)?"
_TYPED_DATETIME = re.compile(f"^{_TYPED_DAY}{_TYPED_TIME}$")
_YEAR_LAST = re.compile(r"^\d{1,2}[-/.]\d{1,2}[-/.]\d{2,4}(?:[\sT].*)?$")
_DURATION = re.compile(r"^(\d+)\s*([smhdw])$")
_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
# What changes how text is shown without being seen: control characters but newline and tab, every
# format character (Unicode category Cf: bidirectional embeddings, overrides and isolates U+202A-202E,
# U+2066-2069, marks U+200E/F and U+061C, zero-width spaces and joiners U+200B-200D, U+2060, U+FEFF,
# soft hyphen, tags ...), line and paragraph separators, and the blank Hangul fillers.
_INVISIBLE = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\xad\u034f\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2"
    "\u115f\u1160\u180e\u200b-\u200f\u2028-\u202e\u2060-\u2064\u2066-\u206f\u3164\ufeff\uffa0"
    "\ufff9-\ufffb\U000110bd\U000110cd\U00013430-\U0001343f\U0001bca0-\U0001bca3\U0001d173-\U0001d17a"
    "\U000e0001\U000e0020-\U000e007f]")
_ZWJ = "\u200d"
_TAG_FLAG = re.compile("\U0001f3f4[\U000e0020-\U000e007e]{1,30}\U000e007f")  # 🏴 + tags: England, Scotland …


@lru_cache(maxsize=32)
def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise DataError("error.bad_timezone", value=name) from exc


def normal_code(code: str) -> str:
    """A partner code as stored and looked up: without surrounding spaces, upper-case (`p001 ` is `P001`)."""
    return code.strip().upper()


def parse_fen(text: str) -> int:
    """CNY with up to two decimals to integer fen: `1234.5`, and as people type them, `12,000.50`,
    `¥12000`, `￥12,000`, `12000元`, `1.2万` (exact to the fen).

    Raises `ValueError` with a reason key: `negative`, `not_a_number`, `too_precise`, and
    `ambiguous` for separators that could mean two amounts (`12.000,50`, `1,2`): never a guess.
    """
    text = text.strip()
    m = _MONEY.match(text)
    if m is not None:
        whole, frac = m.groups()
        return int(whole) * 100 + (int(frac.ljust(2, "0")) if frac else 0)
    typed = _TYPED_MONEY.match(text)
    if typed is None:
        raise ValueError("ambiguous" if "," in text and _ANY_MONEY.match(text) else "not_a_number")
    sign, whole, frac, wan = typed.groups()
    if sign:
        raise ValueError("negative")
    digits = whole.replace(",", "")
    frac = frac or ""
    if wan:  # ten thousand yuan: the fen are the first six decimals
        if len(frac) > 6:
            raise ValueError("too_precise")
        digits, frac = digits + frac[:4].ljust(4, "0"), frac[4:]
    if len(frac) > 2:
        raise ValueError("too_precise")
    if len(digits.lstrip("0")) > 13:
        raise ValueError("not_a_number")
    return int(digits) * 100 + int(frac.ljust(2, "0"))


def parse_day(text: str) -> date:
    """A date, ISO (`2026-12-01`) or as people type it (`2026/12/1`, `2026年12月1日`); a time of
    exactly midnight may follow (a spreadsheet's date cell). Raises `ValueError` with a reason key:
    `bad`, `year_last` (`12/01/2026`: which is the month?), `no_such_day` (`2026/13/01`)."""
    text = text.strip()
    try:
        return date.fromisoformat(text)
    except ValueError:
        pass
    moment = _typed_datetime(text)
    if moment.time() != time():
        raise ValueError("bad")
    return moment.date()


def _typed_datetime(text: str) -> datetime:
    """`parse_day`'s formats with an optional `H:MM[:SS]`, naive. Same reasons as `parse_day`."""
    m = _TYPED_DATETIME.match(text)
    if m is None:
        raise ValueError("year_last" if _YEAR_LAST.match(text) else "bad")
    month, day = (m["m"], m["d"]) if m["sep"] else (m["cm"], m["cd"])
    try:
        day_value = date(int(m["y"]), int(month), int(day))
    except ValueError as exc:
        raise ValueError("no_such_day") from exc
    if m["H"] is None:
        return datetime.combine(day_value, time())
    try:
        return datetime.combine(day_value, time(int(m["H"]), int(m["M"]), int(m["S"] or 0)))
    except ValueError as exc:
        raise ValueError("bad") from exc


def fen_to_decimal(fen: int) -> Decimal:
    return (Decimal(fen) / 100).quantize(Decimal("0.01"))


def parse_decimal(text: str) -> Decimal:
    try:
        value = Decimal(text.strip())
    except InvalidOperation as exc:
        raise ValueError("not_a_number") from exc
    if not value.is_finite():
        raise ValueError("not_a_number")
    return value


def to_hundredths(value: Decimal) -> int:
    """A score or threshold as integer hundredths, rounded half up."""
    return int((value * 100).quantize(Decimal("1"), rounding=ROUND_HALF_UP))


def ratio_hundredths(numerator: int, denominator: int, factor: int = 1) -> int:
    """round(numerator * factor / denominator, 2) as integer hundredths, exact, half up."""
    if denominator == 0:
        return 0
    q = Decimal(numerator * factor * 100) / Decimal(denominator)
    return int(q.quantize(Decimal("1"), rounding=ROUND_HALF_UP))


def parse_datetime_local(text: str, tz: ZoneInfo) -> datetime:
    """ISO 8601, or as people type it (`2026/12/1 8:00`, `2026年12月1日`, see `parse_day`); without
    an offset the time is read in the program time zone. Returns aware UTC.

    Raises `ValueError`; for a value that is not ISO 8601, its first argument is `parse_day`'s reason."""
    text = text.strip()
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        value = _typed_datetime(text)
    if value.tzinfo is None:
        value = value.replace(tzinfo=tz)
    return value.astimezone(UTC)


def parse_period_bound(text: str, tz: ZoneInfo, *, is_end: bool) -> datetime:
    """A contest bound: a date alone is the start of that day; an end date is inclusive."""
    text = text.strip()
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            if is_end:
                day += timedelta(days=1)
            return datetime.combine(day, time(), tzinfo=tz).astimezone(UTC)
        return parse_datetime_local(text, tz)
    except ValueError as exc:
        raise DataError("error.bad_datetime", value=text) from exc


def parse_duration(text: str) -> int:
    """`6h`, `30m`, `2d`, `1w` or `0` to seconds."""
    text = text.strip().lower()
    if text in ("", "0"):
        return 0
    m = _DURATION.match(text)
    if m is None:
        raise DataError("error.bad_duration", value=text)
    return int(m.group(1)) * _DURATION_UNITS[m.group(2)]


def utcnow() -> datetime:
    return datetime.now(UTC)


def as_utc(value: datetime) -> datetime:
    """Aware UTC; a naive value is taken as UTC (SQLite returns naive datetimes in raw queries)."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def visible(text: str) -> str:
    """`text` without the invisible characters that reorder or hide what is shown (`_INVISIBLE`):
    a name with U+202E cannot turn a board's line around, nor a U+200B make two names look alike.

    What makes emoji is kept: a zero-width joiner between two pictographs (👨‍👩‍👧, 🏳️‍🌈) and the tags of a
    subdivision flag. Chinese text, emoji, newlines and tabs are untouched. Applied to names on
    import and to every value the bot renders into a message (`messages.render`).
    """
    if _INVISIBLE.search(text) is None:
        return text
    flags = [m.span() for m in _TAG_FLAG.finditer(text)]

    def kept(m: re.Match[str]) -> str:
        at, ch = m.start(), m.group()
        if ch == _ZWJ and 0 < at < len(text) - 1 and unicodedata.category(text[at - 1]) in ("So", "Sk", "Mn") \
                and unicodedata.category(text[at + 1]) == "So":
            return ch
        return ch if any(a < at < b for a, b in flags) else ""

    return _INVISIBLE.sub(kept, text)


def clean_name(text: str) -> str:
    """A name as shown on boards: `visible`, on one line, single spaces."""
    return " ".join(visible(text).split())
