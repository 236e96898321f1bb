"""The standings engine on crafted data: metrics, teams, segments, eligibility, ties, tiers."""

from __future__ import annotations

from sqlmodel import Session, select

from models import standings
from models.standings import Entry
from tests.support import builders as b


def by_partner(session: Session, contest) -> dict[int, Entry]:  # type: ignore[no-untyped-def]
    from models.tables import Partner

    codes = {p.id: p.code for p in session.exec(select(Partner))}
    return {codes[e.partner_id]: e for e in standings.compute(session, contest) if e.kind in ("partner", "member")}


def by_team(session: Session, contest) -> dict[str, Entry]:  # type: ignore[no-untyped-def]
    from models.tables import Team

    codes = {t.id: t.code for t in session.exec(select(Team))}
    return {codes[e.team_id]: e for e in standings.compute(session, contest) if e.kind == "team"}


def three_partners(session: Session) -> None:
    b.partners(session, {"code": "A", "team": "T1", "region": "华东", "industry": "建材", "size": "large"},
               {"code": "B", "team": "T1", "region": "华东", "city_tier": "2", "industry": "家电"},
               {"code": "C", "team": "T2", "region": "华南", "city_tier": "3", "industry": "家电"})


def test_every_metric(session: Session) -> None:
    three_partners(session)
    b.sales(session,
            {"id": "1", "partner": "A", "occurred_at": "2026-11-02T10:00", "amount": "100.50", "units": 3,
             "margin": "10", "customer": "K1", "satisfaction": 5},
            {"id": "2", "partner": "A", "occurred_at": "2026-11-03T10:00", "amount": "200", "units": 1,
             "customer": "K2", "satisfaction": 4},
            {"id": "3", "partner": "A", "occurred_at": "2026-10-03T10:00", "amount": "999", "units": 1,
             "customer": "K2"},   # before the period: K2 is not new for A
            {"id": "4", "partner": "B", "occurred_at": "2026-11-04T10:00", "amount": "50", "units": 7,
             "margin": "20.25", "customer": "K2", "satisfaction": 3},
            {"id": "5", "partner": "B", "occurred_at": "2026-11-05T10:00", "amount": "60", "units": 0,
             "customer": "K2"})
    b.targets(session, {"partner": "A", "period_start": "2026-11-01", "period_end": "2026-11-30", "target": "1000"},
              {"partner": "B", "period_start": "2026-10-01", "period_end": "2026-12-31", "target": "440"})
    expect = {
        "revenue": {"A": 30050, "B": 11000, "C": 0},
        "units": {"A": 400, "B": 700, "C": 0},
        "orders": {"A": 200, "B": 200, "C": 0},
        "margin": {"A": 1000, "B": 2025, "C": 0},
        "new_customers": {"A": 100, "B": 100, "C": 0},
        "attainment": {"A": 3005, "B": 2500, "C": 0},
        "satisfaction": {"A": 450, "B": 300, "C": 0},
    }
    for metric, scores in expect.items():
        got = by_partner(session, b.contest(session, metric=metric))
        assert {code: e.score for code, e in got.items()} == scores, metric
    attainment = by_partner(session, b.contest(session, metric="attainment"))
    assert attainment["C"].eligible is False and attainment["C"].reason["code"] == "not_eligible.no_target"
    units = by_partner(session, b.contest(session, metric="units"))
    # B's last sale sold no units, so B reached 7 units with sale 4
    assert units["B"].reached_at.isoformat() == "2026-11-04T02:00:00+00:00"


def test_team_sum_and_average(session: Session) -> None:
    three_partners(session)
    b.sales(session, {"id": "1", "partner": "A", "occurred_at": "2026-11-02T10:00", "amount": "100"},
            {"id": "2", "partner": "B", "occurred_at": "2026-11-02T11:00", "amount": "40"},
            {"id": "3", "partner": "C", "occurred_at": "2026-11-02T12:00", "amount": "90"})
    total = by_team(session, b.contest(session, scope="team", team_score="sum", prizes="1=100"))
    assert (total["T1"].score, total["T1"].rank, total["T2"].score, total["T2"].rank) == (14000, 1, 9000, 2)
    avg = by_team(session, b.contest(session, scope="team", team_score="avg"))
    assert (avg["T1"].score, avg["T1"].rank, avg["T2"].score, avg["T2"].rank) == (7000, 2, 9000, 1)
    members = by_partner(session, b.contest(session, scope="team"))
    assert members["A"].kind == "member" and members["A"].score == 10000 and members["A"].rank is None


def test_segments(session: Session) -> None:
    three_partners(session)
    for segment, who in [("region=华东", {"A", "B"}), ("city_tier=3", {"C"}), ("industry=家电", {"B", "C"}),
                         ("size=large", {"A"}), ("team=T1", {"A", "B"}), ("region=华东,city_tier=2", {"B"})]:
        assert set(by_partner(session, b.contest(session, segment=segment))) == who, segment


def test_admins_and_inactive_do_not_take_part(session: Session) -> None:
    b.partners(session, {"code": "A"}, {"code": "M", "role": "admin"}, {"code": "K", "role": "captain"})
    assert set(by_partner(session, b.contest(session))) == {"A", "K"}


def test_eligibility_rules(session: Session) -> None:
    b.partners(session, {"code": "OLD", "joined_on": "2026-01-01"}, {"code": "NEW", "joined_on": "2026-10-15"},
               {"code": "UNK", "joined_on": ""}, {"code": "LOW", "joined_on": "2020-01-01"})
    b.sales(session, {"id": "1", "partner": "OLD", "occurred_at": "2026-11-02T10:00", "amount": "5000", "satisfaction": 5},
            {"id": "2", "partner": "NEW", "occurred_at": "2026-11-02T10:00", "amount": "9000", "satisfaction": 5},
            {"id": "3", "partner": "UNK", "occurred_at": "2026-11-02T10:00", "amount": "9000", "satisfaction": 5},
            {"id": "4", "partner": "LOW", "occurred_at": "2026-11-02T10:00", "amount": "100", "satisfaction": 5})
    got = by_partner(session, b.contest(session, min_tenure_days=90, min_score="1000", prizes="1=500"))
    assert got["OLD"].eligible and got["OLD"].rank == 1 and got["OLD"].prize_points == 500
    assert got["NEW"].reason == {"code": "not_eligible.tenure", "days": 90, "tenure": 17, "joined_on": "2026-10-15"}
    assert got["NEW"].rank is None and got["NEW"].prize_points == 0
    assert got["UNK"].reason["code"] == "not_eligible.tenure_unknown"
    assert got["LOW"].reason == {"code": "not_eligible.min_score", "min": 100000, "value": 10000}

    b.sales(session, {"id": "5", "partner": "OLD", "occurred_at": "2026-11-03T10:00", "amount": "1", "satisfaction": 2},
            {"id": "6", "partner": "LOW", "occurred_at": "2026-11-03T10:00", "amount": "1"})
    sat = by_partner(session, b.contest(session, min_satisfaction="4"))
    assert sat["OLD"].reason == {"code": "not_eligible.min_satisfaction", "min": 400, "value": 350}
    assert sat["LOW"].eligible  # 5.0 over its one rating
    none_rated = by_partner(session, b.contest(session, min_satisfaction="4", start="2026-11-03", end="2026-11-03"))
    assert none_rated["UNK"].reason["code"] == "not_eligible.no_ratings"


def test_tie_rule(session: Session) -> None:
    b.partners(session, *({"code": c} for c in "ABCDE"))
    b.sales(session,
            {"id": "a", "partner": "A", "occurred_at": "2026-11-05T10:00", "amount": "500"},
            {"id": "b", "partner": "B", "occurred_at": "2026-11-03T10:00", "amount": "500"},   # same score, earlier
            {"id": "c1", "partner": "C", "occurred_at": "2026-11-04T10:00", "amount": "300"},
            {"id": "d1", "partner": "D", "occurred_at": "2026-11-04T10:00", "amount": "300"},  # same score, same time
            {"id": "e", "partner": "E", "occurred_at": "2026-11-01T10:00", "amount": "100"})
    got = by_partner(session, b.contest(session, prizes="1=500,2=300,3=100,4=50"))
    assert [(c, got[c].rank, got[c].position) for c in "BACDE"] == [
        ("B", 1, 1), ("A", 2, 2), ("C", 3, 3), ("D", 3, 4), ("E", 5, 5)]
    assert (got["C"].prize_points, got["D"].prize_points, got["E"].prize_points) == (100, 100, 0)


def test_tiers_and_rebates(session: Session) -> None:
    b.partners(session, *({"code": c} for c in "ABCD"))
    b.sales(session, {"id": "a", "partner": "A", "occurred_at": "2026-11-05T10:00", "amount": "120000"},
            {"id": "b", "partner": "B", "occurred_at": "2026-11-05T10:00", "amount": "50000"},
            {"id": "c", "partner": "C", "occurred_at": "2026-11-05T10:00", "amount": "9999.99"})
    got = by_partner(session, b.contest(session, tiers="bronze=10000:50,silver=50000:200,gold=100000:500:2.5%"))
    assert (got["A"].tier, got["A"].prize_points, got["A"].rebate_pct) == ("gold", 500, "2.5")
    assert (got["B"].tier, got["B"].prize_points) == ("silver", 200)
    assert (got["C"].tier, got["C"].prize_points) == (None, 0)
    assert got["D"].reason["code"] == "ranked.no_activity" and got["D"].prize_points == 0


def test_zero_scores_never_win_prizes(session: Session) -> None:
    b.partners(session, {"code": "A"}, {"code": "B"}, {"code": "C"})
    b.sales(session, {"id": "a", "partner": "A", "occurred_at": "2026-11-05T10:00", "amount": "1"})
    got = by_partner(session, b.contest(session, prizes="1=500,2=300,3=100"))
    assert got["A"].prize_points == 500
    assert (got["B"].rank, got["B"].prize_points, got["C"].prize_points) == (2, 0, 0)


def test_cache_matches_the_ledger_after_imports(session: Session) -> None:
    b.partners(session, *({"code": f"P{i}", "team": f"T{i % 3}"} for i in range(12)))
    contest = b.contest(session, prizes="1=9")
    for i in range(30):
        b.sales(session, {"id": str(i), "partner": f"P{i * 7 % 12}", "occurred_at": f"2026-11-{1 + i % 28:02d}T09:00",
                          "amount": str(100 + i * 13)})
        session.refresh(contest)
        assert contest.standings_dirty
        standings.ensure_fresh(session, contest)
        session.refresh(contest)
        cached = {(s.partner_id, s.score, s.rank) for s in standings.all_lines(session, contest)}
        assert cached == {(e.partner_id, e.score, e.rank) for e in standings.compute(session, contest)}


def test_lookups_top_and_gap(session: Session) -> None:
    b.partners(session, *({"code": c} for c in "ABCD"))
    b.sales(session, {"id": "a", "partner": "A", "occurred_at": "2026-11-05T10:00", "amount": "300"},
            {"id": "b", "partner": "B", "occurred_at": "2026-11-05T10:00", "amount": "200"},
            {"id": "c", "partner": "C", "occurred_at": "2026-11-04T10:00", "amount": "200"})
    contest = b.contest(session, top_n=2)
    standings.ensure_fresh(session, contest)
    from models.tables import Partner

    ids = {p.code: p.id for p in session.exec(select(Partner))}
    assert [line.partner_id for line in standings.top(session, contest, 2)] == [ids["A"], ids["C"]]
    mine = standings.line_of_partner(session, contest, ids["B"])
    assert (mine.rank, mine.position) == (3, 3)  # same score as C, reached later
    above = standings.next_above(session, contest, mine)
    assert above.partner_id == ids["A"] and above.score - mine.score == 10000


def _standing_indexes(session: Session) -> set[str]:
    from sqlalchemy import inspect

    return {str(ix["name"]) for ix in inspect(session.connection()).get_indexes("standing")}


def test_a_rebuild_of_most_lines_builds_the_indexes_after_and_keeps_them(session: Session) -> None:
    """A rebuild writing most of the table's lines drops its indexes for the insert and builds them
    again (SQLite); one writing fewer lines than the others keep leaves them alone. Either way the
    lines are the ledger's and every index is there afterwards."""
    b.partners(session, *({"code": f"P{i}", "team": f"T{i % 3}"} for i in range(12)))
    b.sales(session, *({"id": str(i), "partner": f"P{i}", "occurred_at": "2026-11-03T09:00", "amount": str(100 + i)}
                       for i in range(12)))
    indexes = _standing_indexes(session)
    assert {"ix_standing_lookup", "ix_standing_score"} <= indexes
    first = b.contest(session, name="十一月")
    second = b.contest(session, name="小组赛", segment="team=T1")
    dbapi = session.connection().connection.dbapi_connection
    statements: list[str] = []
    if session.connection().dialect.name == "sqlite":
        dbapi.set_trace_callback(statements.append)  # type: ignore[union-attr]
    try:
        standings.refresh(session, first.id)
        rebuilt_first = [s for s in statements if s.startswith(("DROP INDEX", "CREATE INDEX"))]
        statements.clear()
        standings.refresh(session, second.id)  # 4 lines beside the first contest's 12
        rebuilt_second = [s for s in statements if s.startswith(("DROP INDEX", "CREATE INDEX"))]
    finally:
        if session.connection().dialect.name == "sqlite":
            dbapi.set_trace_callback(None)  # type: ignore[union-attr]
    if session.connection().dialect.name == "sqlite":
        assert len([s for s in rebuilt_first if s.startswith("DROP")]) == len(indexes)
        assert len([s for s in rebuilt_first if s.startswith("CREATE")]) == len(indexes)
        assert rebuilt_second == []
    assert _standing_indexes(session) == indexes
    for contest in (first, second):
        session.refresh(contest)
        cached = {(s.partner_id, s.score, s.rank) for s in standings.all_lines(session, contest)}
        assert cached == {(e.partner_id, e.score, e.rank) for e in standings.compute(session, contest)}
    assert len(standings.all_lines(session, second)) == 4
