"""Every word the product says: jinja2 templates and string tables per language, and filters.

`messages/<locale>/strings.toml` holds short phrases by key (each a jinja2 template string);
`messages/<locale>/*.j2` holds the longer replies. Chinese is the default language.
"""

from __future__ import annotations

import tomllib
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from functools import lru_cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, Template

from messages.locales import DEFAULT_LOCALE, LOCALES
from models.kinds import Metric
from models.values import visible

HERE = Path(__file__).parent
MEDALS = {1: "🥇", 2: "🥈", 3: "🥉"}


def _locale(locale: str | None) -> str:
    return locale if locale in LOCALES else DEFAULT_LOCALE


# String tables besides `strings.toml`, each under its file's name: `console.toml`'s `[nav] audit`
# is `console.nav.audit` (the web console's words, read by its templates with the same `t`).
TABLES = ("console", "dealer")


@lru_cache(maxsize=4)
def strings(locale: str) -> dict[str, str]:
    """The flattened string table of a language (`[row] bad_date = …` becomes `row.bad_date`), with
    the `TABLES` under their names."""
    with (HERE / locale / "strings.toml").open("rb") as f:
        data = tomllib.load(f)
    for name in TABLES:
        path = HERE / locale / f"{name}.toml"
        if path.exists():
            with path.open("rb") as f:
                if name in data:
                    raise ValueError(f"{path}: strings.toml has a [{name}] table already")
                data[name] = tomllib.load(f)
    flat: dict[str, str] = {}

    def walk(prefix: str, node: dict[str, Any]) -> None:
        for key, value in node.items():
            name = f"{prefix}.{key}" if prefix else key
            if isinstance(value, dict):
                walk(name, value)
            else:
                flat[name] = str(value)

    walk("", data)
    return flat


_DICT_ATTRIBUTES = frozenset(dir(dict))


class _Environment(Environment):
    """Looks `x.name` up as a key first when `x` is a plain dict (what replies carry).

    Jinja tries the attribute first and the key after the `AttributeError`: a raised exception
    for each of the ~80 lookups of a `/rank` reply (a third of its render time). A plain dict has
    no attributes but dict's own, so trying the key first for any other name gives the same value.
    """

    def getattr(self, obj: Any, attribute: str) -> Any:
        if type(obj) is dict and attribute not in _DICT_ATTRIBUTES:
            try:
                return obj[attribute]
            except KeyError:
                return self.undefined(obj=obj, name=attribute)
        return super().getattr(obj, attribute)


@lru_cache(maxsize=4)
def environment(locale: str) -> Environment:
    """The language's templates. `auto_reload=False`: the templates ship with the package and change
    only with it, so a loaded template is not checked against its file (an `os.stat`) at every reply."""
    env = _Environment(loader=FileSystemLoader(str(HERE / locale)), autoescape=False, undefined=StrictUndefined,
                       trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=False, auto_reload=False)
    env.filters.update(money=lambda fen: money(fen, locale), num=number, signed=signed, medal=medal, pct=percent,
                       score=lambda s, metric: score_text(s, metric, locale),
                       board=lambda top, metric: board_lines(top, metric, locale),
                       reason=lambda r, metric: reason_text(r, metric, locale),
                       local=local_time, deadline=deadline, zone=lambda tz: zone_name(tz, locale),
                       dated=lambda name, start, tz: dated_name(name, start, tz, locale),
                       hours=lambda secs: number(Decimal(secs) / 3600),
                       period=lambda c: period_text(c["start"], c["end"], c["tz"]))
    env.globals["t"] = lambda key, **params: t(key, locale, **params)
    return env


@lru_cache(maxsize=2048)
def _compiled(locale: str, key: str) -> Template:
    table = strings(locale)
    source = table.get(key)
    if source is None:
        source = strings(DEFAULT_LOCALE).get(key, key)
    return environment(locale).from_string(source)


def t(key: str, locale: str | None = None, **params: Any) -> str:
    """A short phrase by key, in the given language (a missing key shows the key itself)."""
    if not params:
        return _plain(_locale(locale), key)
    return visible(_compiled(_locale(locale), key).render(**params))


@lru_cache(maxsize=2048)
def _plain(locale: str, key: str) -> str:
    """A phrase without parameters reads the same every time (`metric.revenue`, `status.active` …)."""
    return _compiled(locale, key).render()


def board_lines(top: list[dict[str, Any]], metric: str, locale: str) -> str:
    """The public board's lines of a `/rank` reply (`rank_board.j2`, the `board` filter), rendered once
    for the same lines: every asker of a contest sees the same board until the standings change, and
    its ten lines were the larger part of the reply's rendering. Kept by what the template reads of
    each line (rank, name, score, tier) and the metric, so a changed board is another key."""
    return _board_text(locale, metric, tuple((x["rank"], x["name"], x["score"], x["tier"]) for x in top))


@lru_cache(maxsize=64)
def _board_text(locale: str, metric: str, lines: tuple[tuple[Any, str, Any, Any], ...]) -> str:
    top = [{"rank": rank, "name": name, "score": score, "tier": tier} for rank, name, score, tier in lines]
    return environment(locale).get_template("rank_board.j2").render(top=top, metric=metric)


def render(template: str, locale: str | None = None, **context: Any) -> str:
    """A longer reply from `messages/<locale>/<template>.j2`.

    Like `t`, without the bidi overrides and zero-width characters a name or text someone typed or
    imported may carry (`models.values.visible`): whatever the bot posts, on a public board or not,
    shows what it says. Once per message (our own words have none), not per value (cheaper).
    """
    return visible(environment(_locale(locale)).get_template(f"{template}.j2").render(**context).strip())


def money(fen: int | Decimal | None, locale: str | None = None) -> str:
    """¥12,345.00: one rule for every amount and language (full yuan, thousands separators, two decimals),
    so a threshold, a score and a gap in one reply read alike."""
    if fen is None:
        return "-"
    if type(fen) is int:  # the common case, in integers (same text)
        whole, cents = divmod(abs(fen), 100)
        return f"¥{'-' if fen < 0 else ''}{whole:,}.{cents:02d}"
    yuan = (Decimal(fen) / 100).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    return f"¥{'-' if yuan < 0 else ''}{abs(yuan):,.2f}"


def number(value: Any) -> str:
    """Thousands separators; no trailing zeros after a decimal point. Points are always shown so (`num`)."""
    if isinstance(value, Decimal):
        value = value.normalize()
        if value == value.to_integral():
            return f"{int(value):,}"
        return f"{value:,f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def signed(value: int) -> str:
    """A change of points: `+5,000`, `-50` (`signed` in templates)."""
    return f"{value:+,}"


def percent(hundredths: int) -> str:
    value = (Decimal(hundredths) / 100).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)
    return f"{value:f}%"


def medal(rank: int | None) -> str:
    if rank is None:
        return "-"
    return MEDALS.get(rank, f"{rank}.")


def local_time(value: datetime, tz: str, fmt: str = "%Y-%m-%d %H:%M") -> str:
    from zoneinfo import ZoneInfo

    return value.astimezone(ZoneInfo(tz)).strftime(fmt)


def deadline(end: datetime, tz: str, date_format: str = "%m-%d") -> str:
    """An exclusive end as people read it: the last day they can still sell on.

    A period ending at midnight on 01-01 reads `12-31 24:00` (not `01-01 00:00`, which looks
    like one more day); any other end reads as the time it is, `12-31 18:00`.
    """
    from datetime import timedelta
    from zoneinfo import ZoneInfo

    b = end.astimezone(ZoneInfo(tz))
    if b.time() == datetime.min.time():
        return f"{(b - timedelta(days=1)).strftime(date_format)} 24:00"
    return f"{b.strftime(date_format)} {b:%H:%M}"


# China Standard Time under its names in the tz database: shown to people as 北京时间
CHINA_ZONES = frozenset({"Asia/Shanghai", "Asia/Chongqing", "Asia/Chungking", "Asia/Harbin", "PRC"})


def zone_name(tz: str, locale: str | None = None) -> str:
    """A time zone as people say it: 北京时间 / Beijing time, else the zone's own name."""
    return t("time.china", locale) if tz in CHINA_ZONES else tz


def dated_name(name: str, start: datetime, tz: str, locale: str | None = None) -> str:
    """A contest's name with the month it started in (`2026年11月 季度冲刺`), unless the name already
    says the month (`11月销售冠军`, `November sprint`): an honour read once, not `2026年11月 11月…`."""
    import re
    from zoneinfo import ZoneInfo

    local = start.astimezone(ZoneInfo(tz))
    for mark in t("time.month_marks", locale).split("|"):
        if re.search(rf"(?<![0-9]){re.escape(local.strftime(mark))}", name, re.IGNORECASE):
            return name
    return f"{local.strftime(t('time.month', locale))} {name}"


@lru_cache(maxsize=256)
def period_text(start: datetime, end: datetime, tz: str) -> str:
    """`2026-11-01 – 2026-11-30` for whole days (the end is exclusive, shown inclusive), else with times
    (an end at midnight as `24:00` of the day before, see `deadline`).

    Kept: every `/rank` shows its contest's period, the same text each time (3% of the core's time).
    """
    from datetime import timedelta
    from zoneinfo import ZoneInfo

    zone = ZoneInfo(tz)
    a, b = start.astimezone(zone), end.astimezone(zone)
    if a.time() == b.time() == datetime.min.time():
        return f"{a:%Y-%m-%d} – {(b - timedelta(days=1)):%Y-%m-%d}"
    return f"{a:%Y-%m-%d %H:%M} – {deadline(end, tz, '%Y-%m-%d')}"


COUNT_METRICS = ("units", "orders", "new_customers")


def score_text(score: int | None, metric: str, locale: str | None = None) -> str:
    """A score in hundredths, shown in the metric's own unit."""
    if score is None:
        return "-"
    if metric in ("revenue", "margin"):
        return money(score, locale)
    if metric == Metric.ATTAINMENT:
        return percent(score)
    value = Decimal(score) / 100
    if metric == Metric.SATISFACTION:
        return f"{value.quantize(Decimal('0.01'), rounding=ROUND_HALF_UP):f}"
    return number(value)


def reason_text(reason: dict[str, Any] | None, metric: str, locale: str | None = None) -> str:
    """Why a participant stands where they stand, from the rule code stored with the line."""
    if not reason:
        return ""
    code = str(reason.get("code", ""))
    key = "reason." + code.removeprefix("not_eligible.").replace(".", "_")
    params = dict(reason)
    for name in ("min", "value", "tier_threshold"):
        if params.get(name) is not None:
            shown_metric = "satisfaction" if code.endswith(("satisfaction", "no_ratings")) else metric
            params[f"{name}_text"] = score_text(params[name], shown_metric, locale)
    params.setdefault("tier_threshold_text", "")
    return t(key, locale, **params)


def fit(text: str, max_chars: int | None = None, max_bytes: int | None = None, more: str = "…") -> str:
    """Cut a reply to a platform's limit at a line boundary (never inside a character).

    Lines are dropped from the end until the text plus a final `more` line fits; a single
    over-long line is cut at the last whole character that fits.
    """

    def fits(candidate: str) -> bool:
        if max_chars is not None and len(candidate) > max_chars:
            return False
        return max_bytes is None or len(candidate.encode("utf-8")) <= max_bytes

    if fits(text):
        return text
    lines = text.split("\n")
    while len(lines) > 1:
        lines.pop()
        candidate = "\n".join(lines).rstrip() + "\n" + more
        if fits(candidate):
            return candidate
    line = lines[0]
    while line and not fits(line + more):
        line = line[: max(len(line) - max(len(line) // 8, 1), 0)]
    return line + more
