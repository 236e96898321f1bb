"""Standings kept by a sales import: each open contest's per-partner sums, without reading the ledger back.

A sales import sees every row it appends. Before its first row, it reads each open contest's
sums over the ledger as it is (`standings.period_sums`: nothing to read for a fresh month, one
index probe says so); while it goes, it adds each new row to the sums of the contests whose
period holds it (`Tally`); after it, those sums are what `standings.activity` would read from
the ledger — the same GROUP BY over the same rows, in two parts — and the standings are rebuilt
from them (`standings.refresh(…, sums=…)`). This spares the rebuild's GROUP BY over the rows
just written, which after a large import in its own transaction reads them back from SQLite's
write-ahead log (4 s of the CLI's 1,000,000-row import, against 1.1 s after a commit).

Everything else of the rebuild (participants, targets, eligibility, ranks, prizes) is read and
computed as by a full refresh, so the standings are the same line for line
(`tests/models/test_maintained_standings.py`). Where the sums cannot be kept this way, the
contest is simply rebuilt in full after the import (no `Window` for it, or `Tally.lost`):

- a new-customers contest (whether a customer is new depends on the partner's earlier sales,
  and a voided sale bought nothing: not a sum);
- an import on SQLite's fast path whose rows were not all new (a re-import, a file overlapping
  an earlier one: the parser tallied every row, and the rows the database skipped are not told
  apart from the new ones there). The general path (PostgreSQL, or a file with correcting rows)
  tallies only the rows it inserts, correcting rows with their sign.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
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
    sums: dict[int, Sums] = field(default_factory=dict)  # what the import added (times as its rows give them)


class Tally:
    """The sums of the windows, row by row as the import appends them (`add`).

    Marshal-able as `state()` (plain lists, ints, strings, None): the forked parser of a large
    file keeps the tally and hands it back at the end (`adopt`)."""

    def __init__(self, windows: list[Window]) -> None:
        self.windows = windows
        self.lost = not windows  # nothing to keep, or something this import did cannot be kept

    def add(self, rows: Iterable[Sequence[Any] | None], at: tuple[int, int, int, int, int, int] = (0, 1, 2, 3, 4, 5),
            sign: int = 1) -> None:
        """New sales, as stored: rows holding the partner id, time, amount in fen, units, margin in
        fen and rating at the positions `at`; `sign` -1 for correcting rows (they take an order and
        a rating back out, as `activity` does).

        Only the figures each window's contest reads, and its metric's own time, are kept: this
        runs for every row of a file (in the forked parser of a large one: 1,000,000 rows of a
        revenue contest ~0.5 s, against 6 s for every figure and every time)."""
        if self.lost:
            return
        rows = rows if isinstance(rows, list) else list(rows)
        p, w, a, u, m, r = at
        for window in self.windows:
            lo, hi, sums = window.lo, window.hi, window.sums
            names = window.names
            units, orders, margins = "units" in names, "orders" in names, "margin" in names
            ratings = "ratings_n" in names
            t = _REACHED[window.metric]
            for row in rows:
                if row is None:
                    continue
                when = row[w]
                if not lo <= when < hi:
                    continue
                pid = row[p]
                s = sums.get(pid)
                if s is None:
                    s = sums[pid] = [0, 0, 0, 0, 0, 0, None, None, None, None, None]
                amount = row[a]
                s[0] += amount
                if units:
                    s[1] += row[u]
                if orders:
                    s[2] += sign
                if margins and row[m]:
                    s[3] += row[m]
                if ratings and row[r] is not None:
                    s[4] += row[r] * sign
                    s[5] += sign
                if t == _T_AMOUNT:
                    moved = amount > 0
                elif t == _T_UNITS:
                    moved = row[u] > 0
                elif t == _T_ANY:
                    moved = True
                elif t == _T_MARGIN:
                    moved = bool(row[m])
                else:
                    moved = row[r] is not None
                if moved and (s[t] is None or when > s[t]):
                    s[t] = when

    def lose(self) -> None:
        """Something was written that the sums do not follow: rebuild in full."""
        self.lost = True
        self.windows = []

    def state(self) -> tuple[bool, list[dict[int, Sums]]]:
        return self.lost, [window.sums for window in self.windows]

    def adopt(self, state: tuple[bool, list[dict[int, Sums]]]) -> None:
        """Take the forked parser's sums; lost if either side lost them (the importing process
        loses them when some rows were stored already, after the parser tallied them)."""
        lost, sums = state
        if lost or self.lost:
            self.lose()
            return
        for window, kept in zip(self.windows, sums, strict=True):
            window.sums = kept

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
            for pid, added in window.sums.items():
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


def _as_datetime(value: Any) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(value).replace(tzinfo=UTC)  # SQLite's UTC text


def sums_of(names: list[str], metric: str, values: dict[str, Any], reached: datetime | None) -> Sums:
    """A partner's `Sums` from `standings.period_sums`' figures (only `names` read; the others 0)
    and the metric's own time."""
    s: Sums = [0, 0, 0, 0, 0, 0, None, None, None, None, None]
    for name in names:
        s[_FIELDS[name]] = values[name]
    s[_REACHED[metric]] = reached
    return s


def figures(s: Sums, names: list[str], metric: str) -> tuple[dict[str, int], datetime | None]:
    """The figures `names` of `Sums`, and the metric's own time (an aware UTC datetime)."""
    return {name: int(s[_FIELDS[name]]) for name in names}, _as_datetime(s[_REACHED[metric]])
