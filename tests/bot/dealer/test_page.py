"""What the dealer sees (issue 17), over HTTP: the standing, the what-if (checked by making the sale),
the calculator, the public board, the team, points, honours and the store — and nothing private of
anyone else, whatever URL is asked."""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine

from handlers import dealer_page
from messages.render import money, t
from models import prospects, standings
from models.db import session_scope
from models.tables import Contest
from models.values import utcnow
from tests.bot.dealer.conftest import API_TOKEN, SALES, TG, month
from tests.support.dealer_web import telegram_signed_in

PNG = b"\x89PNG\r\n\x1a\n" + b"0" * 64


def signed(site: httpx.Client, code: str) -> httpx.Client:
    assert telegram_signed_in(site, TG[code]).status_code == 303
    return site


def rank_of(engine: Engine, contest_id: int, partner_id: int) -> int | None:
    with session_scope(engine) as s:
        contest = s.get(Contest, contest_id)
        assert contest is not None
        standings.ensure_fresh(s, contest)
        line = standings.line_of_partner(s, contest, partner_id)
        return line.rank if line is not None else None


def sell(site: httpx.Client, ident: str, code: str, fen: int) -> None:
    _start, _end, when = month()
    record = {"id": ident, "partner": code, "occurred_at": utcnow().isoformat(), "amount": f"{fen / 100:.2f}",
              "units": 1}
    answer = site.post("/api/sales", json=[record], headers={"Authorization": f"Bearer {API_TOKEN}"})
    assert answer.status_code == 200, answer.text


def test_my_standing_and_the_public_board(site: httpx.Client, program: dict[str, int]) -> None:
    page = signed(site, "P1").get("/me/")
    assert page.status_code == 200
    html = page.text
    assert len(page.content) < 100_000
    card = html[html.index(f'id="contest-{program["solo"]}"'):html.index(f'id="contest-{program["team"]}"')]
    assert t("dealer.contest.rank", "zh", rank=4) in card and t("dealer.contest.of", "zh", n="6") in card
    assert money(2800000, "zh") in card
    assert t("dealer.contest.to_place", "zh", rank=3, gap=money(1200000, "zh")) in card
    assert t("dealer.contest.to_tier", "zh", tier="银牌", gap=money(2200000, "zh")) in card
    board = re.findall(r'<span class="who">([^<]+)', card)
    assert [name.strip() for name in board] == ["赵六", "李四", "王队长", "张三"]  # top 3, then my own line
    assert "钱七" not in html and "Emma" not in html  # below the top 3, not mine: never shown
    assert 'class="mine gap"' in card


def test_what_if_amounts_are_what_the_standings_do(site: httpx.Client, engine: Engine,
                                                   program: dict[str, int]) -> None:
    with session_scope(engine) as s:
        contest = s.get(Contest, program["solo"])
        assert contest is not None
        standings.ensure_fresh(s, contest)
        out = prospects.outlook(s, contest=contest, partner_id=program["id_P1"], team_id=None)
    assert out is not None and out.unit == prospects.MONEY
    by_goal = {(p.kind, p.goal_rank or p.goal_tier): p for p in out.prospects}
    mine = SALES["P1"] * 100
    assert by_goal[("place", 3)].amount == SALES["CAP"] * 100 - mine + 1 and by_goal[("place", 3)].rank == 3
    assert by_goal[("top", 2)].amount == SALES["P2"] * 100 - mine + 1 and by_goal[("top", 2)].rank == 2
    assert by_goal[("top", 1)].amount == SALES["W1"] * 100 - mine + 1 and by_goal[("top", 1)].rank == 1
    assert by_goal[("tier", "银牌")].amount == 5000000 - mine and by_goal[("tier", "银牌")].rank == 3
    assert [p.amount for p in out.prospects] == sorted(p.amount for p in out.prospects)
    page = signed(site, "P1").get("/me/").text
    assert t("dealer.whatif.more_revenue", "zh", amount=money(1200001, "zh")) in page
    # one fen short of the place leaves the rank as it is (a tie is lost: CAP got there first) ...
    sell(site, "w-1", "P1", by_goal[("place", 3)].amount - 1)
    assert rank_of(engine, program["solo"], program["id_P1"]) == 4
    # ... and that one fen more takes it
    sell(site, "w-2", "P1", 1)
    assert rank_of(engine, program["solo"], program["id_P1"]) == 3


def test_the_calculator_answers_from_the_standings(site: httpx.Client, program: dict[str, int]) -> None:
    client = signed(site, "P1")
    answer = client.get("/me/api/calc", params={"contest": program["solo"], "amount": 7200000})
    assert answer.status_code == 200
    found = answer.json()
    assert found["rank"] == 1 and found["tier"] == "金牌"
    assert found["text"] == t("dealer.whatif.result_tier", "zh", rank=1, tier="金牌")
    assert client.get("/me/api/calc", params={"contest": program["solo"], "amount": 0}).json()["rank"] == 4
    assert client.get("/me/api/calc", params={"contest": program["solo"], "amount": "-5"}).status_code == 400
    assert client.get("/me/api/calc", params={"contest": 999999, "amount": 5}).status_code == 404


def test_a_captain_sees_each_members_contribution(site: httpx.Client, program: dict[str, int]) -> None:
    html = signed(site, "CAP").get("/me/").text
    team = html[html.index('id="team"'):html.index('id="points"')]
    for name, amount in (("李四", 60000), ("王队长", 40000), ("张三", 28000)):
        assert name in team and money(amount * 100, "zh") in team
    race = html[html.index(f'id="contest-{program["team"]}"'):html.index('id="team"')]
    assert "EAST" in race or "WEST" in race
    assert race.count('class="mine') == 1  # my team, highlighted in the team race


def test_a_member_sees_the_team_total_and_their_own_share(site: httpx.Client, program: dict[str, int]) -> None:
    html = signed(site, "P1").get("/me/").text
    team = html[html.index('id="team"'):html.index('id="points"')]
    total = (SALES["P1"] + SALES["P2"] + SALES["CAP"]) * 100
    assert t("dealer.team.total", "zh", total=money(total, "zh")) in team
    assert t("dealer.team.mine", "zh", score=money(2800000, "zh")) in team
    assert "李四" not in team and money(6000000, "zh") not in team


def test_points_honours_and_the_store(site: httpx.Client, program: dict[str, int], media: Path) -> None:
    html = signed(site, "P1").get("/me/").text
    points = html[html.index('id="points"'):html.index('id="honours"')]
    assert "300" in points and t("points.contest_prize", "zh") in points
    assert t("dealer.honours.none", "zh") in html and t("dealer.store.none", "zh") in html


def test_english_for_an_english_partner(site: httpx.Client, program: dict[str, int]) -> None:
    assert telegram_signed_in(site, 7400007).status_code == 303
    html = site.get("/me/").text
    assert '<html lang="en">' in html and t("dealer.points.title", "en") in html


def test_a_certificate_is_served_to_its_owner_only(site: httpx.Client, program: dict[str, int], media: Path) -> None:
    from handlers.announcements import certificate_path

    certificate_path(media, program["solo"], program["id_P1"]).write_bytes(PNG)
    mine = signed(site, "P1").get(f"/me/certificate/{program['solo']}.png")
    assert mine.status_code == 200 and mine.content == PNG
    site.cookies.clear()
    other = signed(site, "W2").get(f"/me/certificate/{program['solo']}.png")
    assert other.status_code == 404


def first_event(client: httpx.Client) -> dict[str, object]:
    with client.stream("GET", "/me/events", timeout=10) as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        for line in stream.iter_lines():
            if line.startswith("data:"):
                return dict(json.loads(line.removeprefix("data:")))
    raise AssertionError("no event")


def test_nobody_elses_private_line_on_any_url(site: httpx.Client, program: dict[str, int], media: Path) -> None:
    """Signed in as W2 (5th), walk every URL the page uses: P1 (4th, below the public top 3) must not
    appear, neither name nor score nor points; P1's certificate is not W2's to fetch."""
    from handlers.announcements import certificate_path

    certificate_path(media, program["solo"], program["id_P1"]).write_bytes(PNG)
    client = signed(site, "W2")
    private = ["张三", money(2800000, "zh"), "Emma"]
    pages = [client.get("/me/"), client.get("/me/?part=main"),
             *(client.get("/me/api/calc", params={"contest": c, "amount": a})
               for c in (program["solo"], program["team"]) for a in (0, 100, 2300001)),
             client.get(f"/me/certificate/{program['solo']}.png"),
             client.get(f"/me/certificate/{program['team']}.png")]
    walked = [p.text if p.headers.get("content-type", "").startswith(("text", "application/json")) else p.content
              for p in pages]
    walked.append(json.dumps(first_event(client), ensure_ascii=False))
    for body in walked:
        for secret in private:
            assert (secret not in body) if isinstance(body, str) else (secret.encode() not in body)
    assert pages[-2].status_code == 404
    marks = dealer_page.standing_marks  # the event carries W2's own marks only
    assert marks is not None


def test_the_page_is_small_and_loads_nothing_else(site: httpx.Client, program: dict[str, int]) -> None:
    page = signed(site, "CAP").get("/me/")
    assert len(page.content) < 100_000
    assert not re.search(r'<(script|link)[^>]+(src|href)=', page.text)
    assert 'loading="lazy"' in page.text or "<img" not in page.text


@pytest.mark.parametrize("path", ["/me/nothing", "/me/certificate/abc.png"])
def test_unknown_paths(site: httpx.Client, program: dict[str, int], path: str) -> None:
    assert signed(site, "P1").get(path).status_code == 404


def test_not_eligible_the_reason_and_what_to_do(site: httpx.Client, engine: Engine, program: dict[str, int]) -> None:
    from tests.support import builders as b

    start, end, _when = month()
    with session_scope(engine) as s:
        gated = b.contest(s, start=start, end=end, name="门槛赛", min_score="50000").id
    html = signed(site, "P1").get("/me/").text
    card = html[html.index(f'id="contest-{gated}"'):]
    card = card[:card.index("</section>")]
    assert t("dealer.contest.not_eligible", "zh") in card
    assert t("reason.min_score", "zh", min_text=money(5000000, "zh")) in card
    assert t("dealer.todo.min_score", "zh") in card
    assert t("dealer.whatif.more_revenue", "zh", amount=money(2200000, "zh")) in card  # to the minimum
    assert t("dealer.whatif.to_qualify", "zh") in card
    calc = site.get("/me/api/calc", params={"contest": gated, "amount": 100}).json()
    assert calc["rank"] is None and calc["text"] == t("dealer.whatif.result_unranked", "zh")
