"""The meeting-room board over HTTP: no cookie needed, only the public top N, a revoked or unknown
link shows nothing; its event stream sends the board at once and again when a sale moves the
standings, with what to celebrate; and the celebrations themselves (`handlers.boards`)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import Engine, select

from handlers.boards import Board, celebrations
from models import board_links
from models.db import session_scope
from models.tables import BoardLink
from models.values import utcnow
from tests.support import builders as b
from tests.support.builders import SH

TOKEN = "api-token-0123456789"


def day(offset: int) -> str:
    return (utcnow().astimezone(SH) + timedelta(days=offset)).date().isoformat()


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MIANZI_API_TOKEN", TOKEN)


def twelve(engine: Engine, top_n: int = 3) -> tuple[int, str]:
    """Twelve dealers with falling revenue yesterday, a running contest showing the top `top_n`, a board link."""
    with session_scope(engine) as s:
        b.partners(s, *({"code": f"D{i:02d}", "name": f"经销商{i:02d}", "team": "EAST"} for i in range(12)))
        b.sales(s, *({"id": f"y{i}", "partner": f"D{i:02d}", "occurred_at": day(-1) + "T10:00",
                      "amount": str(50000 - i * 3000)} for i in range(12)))
        contest = b.contest(s, name="大屏赛", start=day(-3), end=day(20), top_n=top_n,
                            tiers="银牌=40000:100,金牌=60000:300")
        link = board_links.create(s, contest_id=contest.id, by=None, now=utcnow())
        return contest.id, link.token


def events(client: httpx.Client, token: str, wanted: int, timeout: float = 20.0) -> Iterator[dict]:
    """The first `wanted` events of the board's stream, as {"event", "data"}."""
    got = 0
    with client.stream("GET", f"/board/{token}/events", timeout=timeout) as answer:
        assert answer.status_code == 200
        assert answer.headers["content-type"].startswith("text/event-stream")
        name = None
        for line in answer.iter_lines():
            if line.startswith("event: "):
                name = line.removeprefix("event: ")
            elif line.startswith("data: "):
                yield {"event": name, "data": json.loads(line.removeprefix("data: "))}
                got += 1
                if got >= wanted:
                    return


def test_the_board_shows_only_the_public_top_without_a_cookie(site: httpx.Client, engine: Engine) -> None:
    _contest, token = twelve(engine)
    page = httpx.get(f"{str(site.base_url).rstrip('/')}/board/{token}")  # a fresh client: no cookie at all
    assert page.status_code == 200
    for i in range(3):
        assert f"经销商{i:02d}" in page.text
    for i in range(3, 12):
        assert f"经销商{i:02d}" not in page.text  # never anyone below the top N
    assert "达到银牌" in page.text and "距结束还有" in page.text
    assert site.get(f"/board/{token}?lang=en").text.count("Reached") == 2
    assert site.get("/board/not-a-token").status_code == 404


def test_a_revoked_link_shows_nothing_and_ends_its_stream(site: httpx.Client, engine: Engine) -> None:
    contest, token = twelve(engine)
    with session_scope(engine) as s:
        link = s.execute(select(BoardLink)).scalar_one()
        assert board_links.revoke(s, contest_id=contest, link_id=link.id, now=utcnow())
    page = site.get(f"/board/{token}")
    assert page.status_code == 404 and "经销商00" not in page.text
    (gone,) = list(events(site, token, 1))
    assert gone["event"] == "gone" and "已停用" in gone["data"]["html"]


def test_the_stream_sends_the_board_again_when_a_sale_moves_it(api: None, site: httpx.Client,
                                                                engine: Engine) -> None:
    _contest, token = twelve(engine)
    stream = events(site, token, 2)
    first = next(stream)
    assert first["event"] == "board" and not first["data"]["celebrate"]
    assert "经销商00" in first["data"]["html"] and "经销商05" not in first["data"]["html"]
    sale = {"id": "big", "partner": "D05", "occurred_at": utcnow().astimezone(SH).strftime("%Y-%m-%dT%H:%M"),
            "amount": "70000", "units": 1}
    posted = httpx.post(f"{str(site.base_url).rstrip('/')}/api/sales", json=[sale],
                        headers={"Authorization": f"Bearer {TOKEN}"})
    assert posted.status_code == 200, posted.text
    second = next(stream)
    assert second["event"] == "board" and second["data"]["celebrate"]
    html = second["data"]["html"]
    assert "经销商05 登上第一" in html and "经销商05 达到金牌" in html
    assert "经销商02" not in html.split('class="tv-lines"')[1]  # pushed below the top 3: off the board


def board(leader: str, tiered: dict[str, str | None], counts: dict[str, int]) -> Board:
    return Board({"id": 1}, [{"name": leader, "rank": 1, "score": 100}], 3,
                 [{"name": name, "threshold": 0, "count": n} for name, n in counts.items()], "active", 60,
                 (leader,), tiered)


def test_what_is_celebrated() -> None:
    before = board("甲", {"甲": "银牌", "乙": None}, {"金牌": 0, "银牌": 1})
    assert celebrations(None, before) == []  # the first look: nothing changed yet
    assert celebrations(before, before) == []
    after = board("乙", {"乙": "金牌", "甲": "银牌"}, {"金牌": 1, "银牌": 2})
    assert celebrations(before, after) == [{"kind": "leader", "names": ["乙"]},
                                           {"kind": "tier", "name": "乙", "tier": "金牌"},
                                           {"kind": "tier_count", "tier": "银牌", "count": 1}]  # unnamed: below
    back = board("甲", {"甲": "银牌", "乙": "银牌"}, {"金牌": 0, "银牌": 2})
    assert celebrations(after, back) == [{"kind": "leader", "names": ["甲"]}]  # 乙 falling back is not cheered


def test_a_team_contests_board_is_the_team_race(site: httpx.Client, engine: Engine) -> None:
    with session_scope(engine) as s:
        b.partners(s, *({"code": f"M{i}", "name": f"成员{i}", "team": f"TEAM{i % 3}"} for i in range(9)))
        b.sales(s, *({"id": f"m{i}", "partner": f"M{i}", "occurred_at": day(-1) + "T10:00",
                      "amount": str(10000 * (i % 3 + 1))} for i in range(9)))
        contest = b.contest(s, name="团队赛", scope="team", start=day(-3), end=day(20), top_n=2)
        token = board_links.create(s, contest_id=contest.id, by=None, now=utcnow()).token
    page = site.get(f"/board/{token}").text
    lines = page.split('class="tv-lines"')[1].split("</ol>")[0]
    assert "团队排行" in page and lines.index("TEAM2") < lines.index("TEAM1")  # ¥90,000, then ¥60,000
    assert "TEAM0" not in lines and "成员" not in page  # the top 2 teams only; no member named
