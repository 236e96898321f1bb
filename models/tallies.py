"""Standings kept by a sales import: each open contest's per-partner sums, without reading the ledger back.

A sales import sees every row it appends. Before its first row, it reads each open contest's
sums over the ledger as it is (`standings.windows`: nothing to read for a fresh month, one
index probe says so); while it goes, it adds each new row to the sums of the contests whose
period holds it (`Tally`); after it, those sums are what `standings.activity` would read from
the ledger — the same GROUP BY over the same rows, in two parts — and the standings are rebuilt
from them (`standings.refresh(…, sums=…)`). This spares the rebuild's GROUP BY over the rows
just written, which after a large import in its own transaction reads them back from SQLite's
write-ahead log (up to 4 s of the CLI's 1,000,000-row import under load, against 1.1 s after a
commit). The standings are then written line by line where they changed (`standings._write_lines`).

Everything else of the rebuild (participants, targets, eligibility, ranks, prizes) is read and
computed as by a full refresh, so the standings are the same line for line
(`tests/models/test_maintained_standings.py`). Where the sums cannot be kept this way, the
contest is simply rebuilt in full after the import (no `Window` for it, or `Tally.lost`):

- a new-customers contest (whether a customer is new depends on the partner's earlier sales,
  and a voided sale bought nothing: not a sum);
- an import on SQLite's fast path whose rows were not all new (a re-import, a file overlapping
  an earlier one: the fast path tallies a chunk only when the database took every row of it, and
  does not tell the rows it skipped apart from the new ones). The general path (PostgreSQL, or a
  file with correcting rows) tallies only the rows it inserts, correcting rows with their sign.
"""

from __future__ import annotations

import operator
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import compress, islice, repeat
from operator import itemgetter
from typing import Any

from models.kinds import Metric

Sums = list[Any]
"""A partner's figures in a window: revenue, units, orders, margin, ratings sum, ratings count,
and the last time of a sale with a positive amount, positive units, any sale, a margin, a rating."""

_REVENUE, _UNITS, _ORDERS, _MARGIN, _RSUM, _RN, _T_AMOUNT, _T_UNITS, _T_ANY, _T_MARGIN, _T_RATING = range(11)
_REACHED: dict[str, int] = {Metric.REVENUE: _T_AMOUNT, Metric.ATTAINMENT: _T_AMOUNT, Metric.UNITS: _T_UNITS,
            Metric.ORDERS: _T_ANY, Metric.MARGIN: _T_MARGIN, Metric.SATISFACTION: _T_RATING}
"""Which time moves each metric's score (`standings.activity`'s `reached`)."""

_FIELDS = {"revenue": _REVENUE, "units": _UNITS, "orders": _ORDERS, "margin": _MARGIN, "ratings_sum": _RSUM,
           "ratings_n": _RN}

TALLIED = frozenset(_REACHED)
"""The metrics whose standings a sales import keeps (all but new customers)."""


@dataclass
class Window:
    """One open contest's period, as the import's rows give their times (`lo <= time < hi`: SQLite's
    UTC text, or aware datetimes), and the partners' sums the ledger held in it before the import."""

    contest_id: int
    lo: Any
    hi: Any
    metric: str
    names: list[str]  # the figures the contest's rules read (`standings._needs`): only these are summed
    base: dict[int, Sums]  # what the ledger held (times as aware datetimes)
    # What the import added: by the position of the figure in `Sums`, each partner's (times as the
    # rows give them). Only the figures in `names` and the metric's time; the revenue always.
    added: dict[int, dict[int, Any]] = field(default_factory=dict)
    high: Any = None  # the latest time in `added` (its metric's), in this process


class Tally:
    """The sums of the windows, row by row as the import appends them (`add`, `add_columns`), in
    the importing process (on SQLite's fast path, after each chunk's insert)."""

    def __init__(self, windows: list[Window]) -> None:
        self.windows = windows
        self.lost = not windows  # nothing to keep, or something this import did cannot be kept

    def add(self, rows: Iterable[Sequence[Any] | None], at: tuple[int, int, int, int, int, int] = (0, 1, 2, 3, 4, 5),
            sign: int = 1) -> None:
        """New sales, as stored: rows holding the partner id, time, amount in fen, units, margin in
        fen and rating at the positions `at` (None: skipped); `sign` -1 for correcting rows (they
        take an order and a rating back out, as `activity` does)."""
        if self.lost:
            return
        good = [row for row in rows if row is not None]
        if not good:
            return
        p, w, a, u, m, r = (list(map(itemgetter(i), good)) for i in at)
        self.add_columns(p, w, a, u, m, r, sign=sign)

    def add_columns(self, pids: list[int], times: list[Any], amounts: list[int], units: list[int],
                    margins: list[int | None], ratings: list[int | None], sign: int = 1) -> None:
        """`add` for rows given as columns: only the figures each window's contest reads and its
        metric's own time are kept, a plain loop over two columns each, the filters and the last
        times by C-level builtins. This runs for every row of a file: 1,000,000 rows of a revenue
        contest ~2 s of CPU (a loop over whole rows, every figure and time: ~3 s more)."""
        if self.lost or not pids:
            return
        for window in self.windows:
            lo, hi = window.lo, window.hi
            cols = [pids, times, amounts, units, margins, ratings]
            if not (lo <= min(times) and max(times) < hi):
                inside = [lo <= when < hi for when in times]
                cols = [list(compress(c, inside)) for c in cols]
                if not cols[0]:
                    continue
            p, w, a, u, m, r = cols
            names, added = window.names, window.added
            _sum(added.setdefault(_REVENUE, {}), p, a)
            if "units" in names:
                _sum(added.setdefault(_UNITS, {}), p, u)
            if "orders" in names:
                _sum(added.setdefault(_ORDERS, {}), p, repeat(sign))
            if "margin" in names:
                given = list(map(bool, m))
                _sum(added.setdefault(_MARGIN, {}), compress(p, given), compress(m, given))
            rated = [x is not None for x in r]
            if "ratings_n" in names:
                _sum(added.setdefault(_RSUM, {}), compress(p, rated), ((x or 0) * sign for x in compress(r, rated)))
                _sum(added.setdefault(_RN, {}), compress(p, rated), repeat(sign))
            t = _REACHED[window.metric]
            moved: Iterable[Any] | None = None  # orders: every sale
            if t == _T_AMOUNT:
                moved = map(operator.gt, a, repeat(0))
            elif t == _T_UNITS:
                moved = map(operator.gt, u, repeat(0))
            elif t == _T_MARGIN:
                moved = map(bool, m)
            elif t == _T_RATING:
                moved = rated
            if moved is not None:
                keep = list(moved)
                p, w = list(compress(p, keep)), list(compress(w, keep))
            if p:
                window.high = _latest(added.setdefault(t, {}), p, w, lo, window.high)

    def lose(self) -> None:
        """Something was written that the sums do not follow: rebuild in full."""
        self.lost = True
        self.windows = []

    def kept(self) -> dict[int, dict[int, Sums]]:
        """Each window's sums, the ledger's before and the import's added together, by contest id;
        empty when lost. Times stay as the rows gave them where nothing is merged (`figures`
        turns the one time read into an aware datetime: 100,000 partners × five times parsed
        here was 0.3 s)."""
        if self.lost:
            return {}
        kept: dict[int, dict[int, Sums]] = {}
        for window in self.windows:
            merged = dict(window.base)
            figures = list(window.added.items())
            for pid in window.added.get(_REVENUE, {}):  # every partner with a row in the window
                added: Sums = [0, 0, 0, 0, 0, 0, None, None, None, None, None]
                for at, values in figures:
                    added[at] = values.get(pid, added[at])
                before = merged.get(pid)
                if before is None:
                    merged[pid] = added
                    continue
                times = map(_as_datetime, added[_T_AMOUNT:])
                merged[pid] = [*(a + b for a, b in zip(before[:_T_AMOUNT], added[:_T_AMOUNT], strict=True)),
                               *(b if a is None else a if b is None else max(a, b)
                                 for a, b in zip(before[_T_AMOUNT:], times, strict=True))]
            kept[window.contest_id] = merged
        return kept


def _sum(into: dict[int, int], pids: Iterable[int], values: Iterable[int | None]) -> None:
    get = into.get
    for pid, value in zip(pids, values, strict=False):  # `values` may be endless (`repeat`)
        into[pid] = get(pid, 0) + value  # type: ignore[operator]  # never None: filtered by the caller


def _latest(into: dict[int, Any], pids: list[int], times: list[Any], floor: Any, high: Any) -> Any:
    """Each partner's latest of `times` into `into` (`floor`: no time is earlier; `high`: the
    latest time in `into`, None when empty); returns the new `high`. A file's rows usually come in
    time order: then a dict of (partner, time) keeps each partner's last, which is their latest,
    and later than any kept before when the chunk starts at or after `high`."""
    ordered = all(map(operator.le, times, islice(times, 1, None)))
    if ordered and (high is None or times[0] >= high):
        into.update(zip(pids, times, strict=True))
        return times[-1]
    get = into.get
    for pid, when in zip(pids, times, strict=True):
        if when >= get(pid, floor):
            into[pid] = when
    latest = max(times)
    return latest if high is None or latest > high else high


def _as_datetime(value: Any) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(value).replace(tzinfo=UTC)  # SQLite's UTC text


def sums_of(names: list[str], metric: str, values: dict[str, Any], reached: datetime | None) -> Sums:
    """A partner's `Sums` from the figures of `standings._period_aggs` (only `names` read; the others 0)
    and the metric's own time."""
    s: Sums = [0, 0, 0, 0, 0, 0, None, None, None, None, None]
    for name in names:
        s[_FIELDS[name]] = values[name]
    s[_REACHED[metric]] = reached
    return s


def figures(s: Sums, names: list[str], metric: str) -> tuple[dict[str, int], datetime | None]:
    """The figures `names` of `Sums`, and the metric's own time (an aware UTC datetime)."""
    return {name: int(s[_FIELDS[name]]) for name in names}, _as_datetime(s[_REACHED[metric]])
