"""A contest's rules as data: metrics, segments, prizes, tiers, recurrence, and their parsing.

Scores, thresholds and minimums are integer hundredths of the metric's unit: fen for money,
hundredths of a percent for attainment, hundredths of a point for satisfaction, and
hundredths of a unit for counts (so 12 orders is 1200). One scale keeps every comparison exact.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from models.errors import DataError
from models.kinds import Metric, Scope
from models.values import as_utc, parse_decimal, to_hundredths, utcnow

if TYPE_CHECKING:
    from models.rows import AnyContest

METRICS = tuple(Metric)
MONEY_METRICS = (Metric.REVENUE, Metric.MARGIN)
SCOPES = tuple(Scope)
TEAM_SCORES = ("sum", "avg")
RECURRENCES = ("none", "weekly", "monthly", "quarterly")
SEGMENT_KEYS = ("region", "city_tier", "industry", "size", "team", "role")
PLATFORM_KEY = "platform"  # a push's audience only: the partners' accounts on one app (`models.recipients`)
PLATFORMS = ("telegram", "wechat", "wecom")
STATUSES = ("upcoming", "active", "settling", "closed", "cancelled")


def status(contest: AnyContest, now: datetime | None = None) -> str:
    """Where a contest stands at `now`: one of `STATUSES`."""
    now = now or utcnow()
    if contest.cancelled_at is not None:
        return "cancelled"
    if contest.closed_at is not None:
        return "closed"
    if now < as_utc(contest.start_at):
        return "upcoming"
    if now < as_utc(contest.end_at):
        return "active"
    return "settling"


def parse_segment(text: str | None, *, allow_role: bool = False, allow_platform: bool = False) -> dict[str, str]:
    """`region=华东,city_tier=1` to a dict; unknown keys and malformed pairs are errors."""
    pairs: list[tuple[str, str]] = []
    if not text:
        return {}
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        key, sep, value = part.partition("=")
        if not sep:
            raise DataError("error.bad_segment", value=part, keys=", ".join(_keys(allow_role, allow_platform)))
        pairs.append((key, value))
    return segment_of(pairs, allow_role=allow_role, allow_platform=allow_platform)


def segment_of(pairs: list[tuple[str, str]], *, allow_role: bool = False,
               allow_platform: bool = False) -> dict[str, str]:
    """A segment from (key, value) pairs as a form or the command line gives them; an unknown key, an
    empty value or an impossible one is an error (`error.bad_segment`)."""
    allowed = _keys(allow_role, allow_platform)
    segment: dict[str, str] = {}
    for raw_key, raw_value in pairs:
        key, value = raw_key.strip().lower(), raw_value.strip()
        shown = f"{raw_key.strip()}={raw_value.strip()}"
        if not value or key not in allowed:
            raise DataError("error.bad_segment", value=shown, keys=", ".join(allowed))
        if key == "city_tier" and value not in ("1", "2", "3"):
            raise DataError("error.bad_segment", value=shown, keys=", ".join(allowed))
        if key == PLATFORM_KEY and value not in PLATFORMS:
            raise DataError("error.bad_segment", value=shown, keys=", ".join(allowed))
        segment[key] = value
    return segment


def _keys(allow_role: bool, allow_platform: bool) -> tuple[str, ...]:
    keys = SEGMENT_KEYS if allow_role else SEGMENT_KEYS[:-1]
    return (*keys, PLATFORM_KEY) if allow_platform else keys


def parse_score(text: str, metric: str) -> int:
    """A threshold or minimum in the metric's own unit (yuan, %, points, count) to hundredths."""
    try:
        value = parse_decimal(text)
    except ValueError as exc:
        raise DataError("error.bad_number", value=text) from exc
    if value < 0:
        raise DataError("error.bad_number", value=text)
    return to_hundredths(value)


def parse_prizes(text: str | None) -> list[dict[str, Any]]:
    """`1=500,2=300,3=100` to [{"rank": 1, "points": 500}, …]."""
    prizes: dict[int, int] = {}
    if not text:
        return []
    for part in text.split(","):
        rank, sep, points = part.strip().partition("=")
        if not sep or not rank.strip().isdigit() or not points.strip().isdigit() or int(rank) < 1:
            raise DataError("error.bad_prizes", value=part.strip())
        prizes[int(rank)] = int(points)
    return [{"rank": r, "points": p} for r, p in sorted(prizes.items())]


def parse_tiers(text: str | None, metric: str) -> list[dict[str, Any]]:
    """`bronze=10000:50,silver=50000:200:1.5%` to tiers sorted by threshold.

    Each tier is NAME=THRESHOLD:POINTS with an optional third part, a rebate in percent.
    """
    tiers: list[dict[str, Any]] = []
    if not text:
        return tiers
    for part in text.split(","):
        name, sep, rest = part.strip().partition("=")
        bits = rest.split(":")
        if not sep or not name.strip() or len(bits) not in (2, 3) or not bits[1].strip().isdigit():
            raise DataError("error.bad_tiers", value=part.strip())
        try:
            threshold = parse_score(bits[0], metric)
        except DataError as exc:
            raise DataError("error.bad_tiers", value=part.strip()) from exc
        tier: dict[str, Any] = {"name": name.strip(), "threshold": threshold, "points": int(bits[1])}
        if len(bits) == 3:
            pct = bits[2].strip().rstrip("%")
            try:
                rebate = parse_decimal(pct)
            except ValueError as exc:
                raise DataError("error.bad_tiers", value=part.strip()) from exc
            if rebate < 0 or rebate > 100:
                raise DataError("error.bad_tiers", value=part.strip())
            tier["rebate_pct"] = str(rebate)
        tiers.append(tier)
    names = [t["name"] for t in tiers]
    if len(set(names)) != len(names):
        raise DataError("error.bad_tiers", value=text)
    return sorted(tiers, key=lambda t: t["threshold"])


def tier_for(tiers: list[dict[str, Any]], score: int) -> dict[str, Any] | None:
    """The highest tier whose threshold the score reaches."""
    best = None
    for tier in tiers:
        if score >= tier["threshold"]:
            best = tier
    return best


def next_tier(tiers: list[dict[str, Any]], score: int) -> dict[str, Any] | None:
    """The lowest tier the score has not reached yet."""
    for tier in tiers:
        if score < tier["threshold"]:
            return tier
    return None


def prize_for_rank(prizes: list[dict[str, Any]], rank: int | None) -> int:
    if rank is None:
        return 0
    for prize in prizes:
        if prize["rank"] == rank:
            return int(prize["points"])
    return 0


@dataclass(frozen=True)
class Period:
    start: datetime
    end: datetime


def next_period(start: datetime, end: datetime, recur: str, tz: ZoneInfo) -> Period:
    """The following period of a recurring contest, shifted in the program's calendar."""
    if recur == "weekly":
        return Period(_shift_days(start, 7, tz), _shift_days(end, 7, tz))
    months = {"monthly": 1, "quarterly": 3}.get(recur)
    if months is None:
        raise DataError("error.bad_recur", value=recur)
    return Period(_shift_months(start, months, tz), _shift_months(end, months, tz))


def _shift_days(moment: datetime, days: int, tz: ZoneInfo) -> datetime:
    local = moment.astimezone(tz).replace(tzinfo=None) + timedelta(days=days)
    return local.replace(tzinfo=tz).astimezone(moment.tzinfo)


def _shift_months(moment: datetime, months: int, tz: ZoneInfo) -> datetime:
    local = moment.astimezone(tz)
    index = local.month - 1 + months
    year, month = local.year + index // 12, index % 12 + 1
    days_in_month = (datetime(year + (month == 12), month % 12 + 1, 1) - datetime(year, month, 1)).days
    shifted = local.replace(tzinfo=None).replace(year=year, month=month, day=min(local.day, days_in_month))
    return shifted.replace(tzinfo=tz).astimezone(moment.tzinfo)


def score_to_decimal(score: int) -> Decimal:
    """Hundredths back to the metric's unit."""
    return (Decimal(score) / 100).quantize(Decimal("0.01"))
