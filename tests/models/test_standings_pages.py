"""The console's reading of standings (`models.standings`): pages in SQL (ranked by position, then the
others by score), filters, the line ahead and the tie rule explained, tier counts by index probes
(the same as `tier_counts`), who the rules take in before a contest exists."""

from __future__ import annotations

from sqlmodel import Session

from models import standings
from models.contest_changes import spec_from_options
from models.standings import LineFilter
from models.tables import Contest
from tests.support import builders as b


def program(session: Session) -> Contest:
    """Eight partners: falling revenue, a tie (D3/D4, D3 first), a tie at the same moment (D5/D6: one rank),
    one with nothing (D7, a zero), one too new (N1, not eligible)."""
    b.partners(session, *({"code": f"D{i}", "team": "T1" if i % 2 else "T2", "region": "华东" if i < 4 else "华南", "industry": "建材" if i < 2 else "家电",
                           "joined_on": "2024-01-01"} for i in range(8)),
               {"code": "N1", "team": "T1", "joined_on": "2026-11-20"})
    amounts = {0: 90000, 1: 70000, 2: 50000, 3: 30000, 4: 30000, 5: 10000, 6: 10000}
    b.sales(session, *({"id": f"s{i}", "partner": f"D{i}", "amount": str(a),
                        "occurred_at": f"2026-11-10T{10 + (i if i not in (5, 6) else 5):02d}:00"}
                       for i, a in amounts.items()),
            {"id": "n", "partner": "N1", "occurred_at": "2026-11-10T10:00", "amount": "99999"})
    contest = b.contest(session, tiers="铜=10000:1,银=30000:2,金=80000:3", min_tenure_days=30)
    return standings.refresh(session, contest.id)


def codes(rows: list) -> list[str]:  # type: ignore[type-arg]
    return [r.code for r in rows]


def test_pages_run_ranked_by_position_then_the_others(session: Session) -> None:
    contest = program(session)
    everyone, total = standings.lines_page(session, contest=contest, kind="partner", offset=0, limit=20)
    assert total == 9 and codes(everyone) == ["D0", "D1", "D2", "D3", "D4", "D6", "D5", "D7", "N1"]
    pages = [standings.lines_page(session, contest=contest, kind="partner", offset=o, limit=4)[0] for o in (0, 4, 8)]
    assert [codes(p) for p in pages] == [["D0", "D1", "D2", "D3"], ["D4", "D6", "D5", "D7"], ["N1"]]
    east, total = standings.lines_page(session, contest=contest, kind="partner", offset=1, limit=2,
                                       chosen=LineFilter(region="华东"))
    assert total == 4 and codes(east) == ["D1", "D2"]
    t1, total = standings.lines_page(session, contest=contest, kind="partner", offset=0, limit=10,
                                     chosen=LineFilter(team="T1"))
    assert codes(t1) == ["D1", "D3", "D5", "D7", "N1"] and total == 5 and t1[0].team_code == "T1"
    trade, total = standings.lines_page(session, contest=contest, kind="partner", offset=0, limit=10,
                                        chosen=LineFilter(industry="建材", team="T1"))
    assert codes(trade) == ["D1"] and total == 1


def test_the_tie_rule_explained(session: Session) -> None:
    contest = program(session)
    rows, _total = standings.lines_page(session, contest=contest, kind="partner", offset=0, limit=20)
    above = standings.lines_above(session, contest=contest, kind="partner",
                                  positions=[r.position for r in rows if r.position])
    notes = {r.code: standings.order_note(r, above.get(r.position)) for r in rows}
    assert notes["D0"] == {"code": "first"}
    assert notes["D1"] == {"code": "behind", "gap": 2000000}
    assert notes["D4"]["code"] == "later" and notes["D4"]["above_at"] < notes["D4"]["own_at"]
    assert notes["D5"] == {"code": "shared", "rank": 6}  # D6 and D5 tied to the minute (team id decides the line)
    assert notes["N1"] == {"code": "unranked"}


def test_tier_counts_by_index_are_the_group_by(session: Session) -> None:
    contest = program(session)
    assert standings.tier_counts_by_score(session, contest=contest) == standings.tier_counts(session, contest=contest)
    assert standings.tier_counts_by_score(session, contest=contest) == {"金": 1, "银": 4, "铜": 2}
    team = standings.refresh(session, b.contest(session, scope="team", tiers="银=100000:1").id)
    assert standings.tier_counts_by_score(session, contest=team) == standings.tier_counts(session, contest=team)


def test_who_the_rules_take_in_before_the_contest_exists(session: Session) -> None:
    program(session)
    spec = spec_from_options({"name": "x", "metric": "attainment", "start": "2026-12-01", "end": "2026-12-31",
                              "segment": "team=T1", "min_tenure_days": "30"}, "Asia/Shanghai")
    unsaved = Contest(name=spec.name, metric=spec.metric, start_at=spec.start_at, end_at=spec.end_at,
                      segment=spec.segment, min_tenure_days=spec.min_tenure_days, created_at=spec.start_at)
    figures = standings.participant_figures(session, contest=unsaved)
    assert (figures.in_segment, figures.meet_tenure, figures.lacking_target) == (5, 4, 5)  # N1 joined too late
