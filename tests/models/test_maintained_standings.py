"""Standings kept by a sales import (`models.tallies`) are those a full refresh builds, line for line.

Each import goes through the CLI's door (`handlers.imports.import_file`, a CSV file, its own
transaction), which rebuilds the stale standings from the sums the import kept; then every
contest is rebuilt in full (`standings.refresh`, the ledger's GROUP BY) and the lines compared,
for every metric, scope and eligibility rule: a fresh month, a second file touching some
partners, returns (negative amounts), zero units and margins, ratings, ties, rows outside the
period, targets (attainment), a re-import, correcting rows, and a file large enough for the
forked parser.
"""

from __future__ import annotations

import io
from typing import Any

import pytest
from sqlalchemy import Engine, select
from sqlmodel import Session, col

from handlers.imports import import_file
from models import standings
from models.db import session_scope, table_of
from models.imports.run import FileReport
from models.imports.sqlite_sales import SQLITE_CHUNK
from models.tables import Contest, Partner, Standing
from models.tallies import TALLIED
from tests.support import builders as b

METRICS = ["revenue", "units", "orders", "margin", "attainment", "satisfaction", "new_customers"]
SHAPES: list[dict[str, Any]] = [
    {}, {"scope": "team", "team_score": "sum"}, {"scope": "team", "team_score": "avg"},
    {"min_satisfaction": "3"}, {"min_tenure_days": 30}, {"min_ratings": 1},
    {"start": "2026-11-10"},  # rows of the file before the period
]
HEADER = "id,partner,occurred_at,amount,units,margin,customer,satisfaction\n"


def program(engine: Engine, metrics: list[str] = METRICS, shapes: list[dict[str, Any]] = SHAPES) -> list[int]:
    """Twelve partners (P11 without a team, P7 joined lately) in three teams, targets for most;
    a contest for each metric and shape, with prizes and tiers. Returns the contests' ids."""
    with session_scope(engine) as s:
        b.partners(s, *({"code": f"P{i}", **({"team": f"T{i % 3}"} if i != 11 else {}),
                         "joined_on": "2026-11-05" if i == 7 else "2020-01-01"} for i in range(12)))
        b.targets(s, *({"partner": f"P{i}", "period_start": "2026-11-01", "period_end": "2026-11-30",
                        "target": str(200 + 50 * i)} for i in range(12) if i % 4 != 3))
        ids = []
        for metric in metrics:
            for shape in shapes:
                tiers = "gold=300:50,silver=100:20" if metric != "satisfaction" else "gold=4:50"
                contest = b.contest(s, metric=metric, prizes="1=500,2=300,3=100", tiers=tiers, **shape)
                ids.append(contest.id)
        if metrics == METRICS:  # and a contest with a minimum score, and one the files never touch
            ids.append(b.contest(s, metric="revenue", min_score="150", prizes="1=100").id)
            ids.append(b.contest(s, start="2026-12-01", end="2026-12-31", prizes="1=100").id)
    return ids


def sale_rows(prefix: str, partners: range, days: range, seed: int) -> list[str]:
    """Sales of these partners on these November days: zero amounts, zero units, margins or none
    (zero too), ratings or none, repeat customers, and equal times (ties)."""
    rows = []
    for i in partners:
        for day in days:
            k = (i * 7 + day * 3 + seed) % 11
            amount = f"{k * 37.5:.2f}"  # k == 0: nothing sold
            margin = "" if k % 3 == 0 else f"{(k % 4) * 1.25:.2f}"
            rating = "" if k % 4 == 1 else str(k % 5 + 1)
            hour = 10 if k % 2 else 12  # many partners on the same second: ties of the time reached
            rows.append(f"{prefix}{i}-{day},P{i},2026-11-{day:02d}T{hour}:00:00,{amount},{k % 4},{margin},"
                        f"C{(i + day) % 5},{rating}\n")
    return rows


REVERSING = "id,partner,occurred_at,amount,units,margin,customer,satisfaction,reverses,reason\n"


def returns(prefix: str, sales: list[tuple[int, int]]) -> list[str]:
    """Correcting rows (a return each) of `sale_rows`' sales (partner, day), their values left to the originals."""
    return [f"r{prefix}{i}-{day},P{i},,,,,,,{prefix}{i}-{day},return\n" for i, day in sales]


def run(engine: Engine, rows: list[str], header: str = HEADER) -> FileReport:
    with session_scope(engine) as s:
        return import_file(s, "sales", io.BytesIO((header + "".join(rows)).encode()), timezone="Asia/Shanghai",
                           default_locale="zh")


COLUMNS = [c.name for c in table_of(Standing).c if c.name != "id"]


def _key(line: tuple[Any, ...]) -> tuple[Any, ...]:
    return line[1], line[2] or 0, line[3] or 0  # kind, partner, team


def lines(session: Session, contest_id: int) -> list[tuple[Any, ...]]:
    t = table_of(Standing)
    found = session.execute(select(*(t.c[name] for name in COLUMNS)).where(t.c.contest_id == contest_id)).all()
    return sorted((tuple(r) for r in found), key=_key)


def computed(session: Session, contest_id: int) -> list[tuple[Any, ...]]:
    """The lines a full rebuild writes: `standings.compute` from the ledger (its GROUP BY)."""
    contest = session.get(Contest, contest_id)
    assert contest is not None
    rows = [e.as_row(contest_id) for e in standings.compute(session, contest)]
    return sorted((tuple(row[name] for name in COLUMNS) for row in rows), key=_key)


def assert_as_full_refresh(engine: Engine, ids: list[int], report: FileReport) -> None:
    """The kept sums are the ledger's (`activity`), and the standings built from them (and
    written line by line where they changed) are a full rebuild's; a full refresh then changes
    nothing."""
    with session_scope(engine) as s:
        kept = {cid: lines(s, cid) for cid in ids}
        for cid, sums in report.kept.items():
            contest = s.get(Contest, cid)
            assert contest is not None and contest.metric in TALLIED
            assert standings.activity(s, contest, sums) == standings.activity(s, contest), cid
        assert kept == {cid: computed(s, cid) for cid in ids}
        for cid in ids:
            standings.refresh(s, cid)
        assert {cid: lines(s, cid) for cid in ids} == kept
    assert all(kept[cid] for cid in ids)


def tallied(engine: Engine, ids: list[int]) -> set[int]:
    with session_scope(engine) as s:
        return set(s.execute(select(col(Contest.id)).where(col(Contest.id).in_(ids),
                                                           col(Contest.metric).in_(sorted(TALLIED)))).scalars())


def test_a_fresh_month_then_a_second_file(engine: Engine) -> None:
    ids = program(engine)
    first = run(engine, sale_rows("a", range(12), range(1, 29, 3), seed=0)
                + ["early,P1,2026-10-30T10:00:00,99.00,1,,C1,5\n"])  # before every period
    assert first.inserted == 12 * 10 + 1
    assert set(first.kept) == tallied(engine, ids)
    assert_as_full_refresh(engine, ids, first)
    # A second file: some partners only, the ledger already holding the month (the sums read before it)
    second = run(engine, sale_rows("b", range(2, 12, 3), range(2, 30, 4), seed=5))
    assert second.inserted > 0 and set(second.kept) == tallied(engine, ids)
    assert_as_full_refresh(engine, ids, second)


def test_returns_and_new_sales_in_one_file(engine: Engine) -> None:
    """Correcting rows (returns: negative amounts, units and margins, a rating and an order taken
    back) with new sales in the same file: scores fall and rise, places change."""
    ids = program(engine)
    assert_as_full_refresh(engine, ids, run(engine, sale_rows("a", range(12), range(3, 28, 5), seed=1)))
    gone = [(i, day) for i in range(0, 12, 2) for day in (3, 13)]
    new = [row.rstrip("\n") + ",,\n" for row in sale_rows("n", range(1, 12, 4), range(4, 9), seed=6)]
    report = run(engine, returns("a", gone) + new, header=REVERSING)
    assert report.inserted == len(gone) + 3 * 5 and set(report.kept) == tallied(engine, ids)
    assert_as_full_refresh(engine, ids, report)


def test_a_file_overlapping_an_earlier_one(engine: Engine) -> None:
    """A file some of whose rows are stored already: on SQLite's fast path it keeps no sums and
    its contests are rebuilt from the ledger; the general path keeps the sums of the rows it wrote."""
    ids = program(engine, metrics=["revenue", "satisfaction"], shapes=SHAPES[:2])
    rows = sale_rows("a", range(12), range(1, 29, 3), seed=2)
    assert_as_full_refresh(engine, ids, run(engine, rows))
    again = run(engine, rows[:20] + sale_rows("c", range(4), range(5, 9), seed=3))
    assert again.unchanged == 20 and again.inserted == 16
    assert set(again.kept) == (set() if engine.dialect.name == "sqlite" else tallied(engine, ids))
    assert_as_full_refresh(engine, ids, again)


def test_a_large_file_through_the_forked_parser(engine: Engine) -> None:
    """More rows than one chunk: on SQLite the parser runs in a forked process while the importing
    one inserts the rows and keeps the sums."""
    ids = program(engine, metrics=["revenue", "satisfaction", "attainment"], shapes=SHAPES[:3])
    rows = []
    for n in range(SQLITE_CHUNK + 2500):
        i, day = n % 12, n % 28 + 1
        rows.append(f"L{n:06d},P{i},2026-11-{day:02d}T{n % 24:02d}:{n % 60:02d}:00,{n % 97}.50,{n % 3},"
                    f"{n % 13}.00,C{n % 31},{'' if n % 5 == 0 else n % 5}\n")
    report = run(engine, rows)
    assert report.inserted == len(rows) and set(report.kept) == tallied(engine, ids)
    assert_as_full_refresh(engine, ids, report)


@pytest.mark.parametrize("metric", sorted(TALLIED))
def test_every_tallied_metric_is_kept(engine: Engine, metric: str) -> None:
    ids = program(engine, metrics=[metric], shapes=[{}])
    report = run(engine, sale_rows("a", range(12), range(1, 29, 7), seed=4))
    assert list(report.kept) == ids
    assert_as_full_refresh(engine, ids, report)


def test_a_small_file_rewrites_only_the_lines_it_changed(engine: Engine) -> None:
    """One sale of a partner near the bottom: the lines it moves are updated in place, the
    others keep their row (and id), and the standings are a full rebuild's."""
    ids = program(engine, metrics=["revenue"], shapes=SHAPES[:2])
    assert_as_full_refresh(engine, ids, run(engine, sale_rows("a", range(12), range(1, 29, 3), seed=0)))
    t = table_of(Standing)

    def stored() -> dict[tuple[Any, ...], tuple[int, str]]:
        """Each line by (contest, kind, partner, team): its id and its values."""
        with session_scope(engine) as s:
            found = s.execute(select(t.c.id, *(t.c[n] for n in COLUMNS)).where(t.c.contest_id.in_(ids))).all()
        return {tuple(r[1:5]): (r[0], repr(tuple(r[1:]))) for r in found}

    before = stored()
    with session_scope(engine) as s:
        last = s.execute(select(t.c.partner_id).where(t.c.contest_id == ids[0], t.c.kind == "partner")
                         .order_by(t.c.position.desc()).limit(1)).scalar_one()
        code = s.execute(select(col(Partner.code)).where(col(Partner.id) == last)).scalar_one()
    assert_as_full_refresh(engine, ids, run(engine, [f"z1,{code},2026-11-29T10:00:00,0.01,1,,C1,\n"]))
    after = stored()
    assert before.keys() == after.keys()
    kept = [key for key in after if before[key][1] == after[key][1]]
    moved = [key for key in after if before[key][1] != after[key][1]]
    assert moved and len(kept) > len(moved)
    assert all(before[key][0] == after[key][0] for key in after)  # updated in place: no line deleted
