"""The dealer page in a real browser at a phone's size (Debian's Chromium under Playwright, 390×844),
opened as Telegram opens a Mini App (`#tgWebAppData=…` in the URL): a dealer, a captain, an unbound
visitor; the what-if against the standings, the calculator, and the page updating itself after a
sale is posted to /api/sales. Screenshots of each view go to `.test-artifacts/`."""

from __future__ import annotations

from urllib.parse import quote

import httpx
import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import Engine

from messages.render import money, t
from models import prospects, standings
from models.db import session_scope
from models.tables import Contest
from models.values import utcnow
from tests.bot.dealer.conftest import API_TOKEN, SALES, STRANGER, TG
from tests.support.browser import ARTIFACTS
from tests.support.dealer_web import init_data


def open_mini_app(page: Page, user_id: int) -> None:
    """As Telegram opens a Mini App: the page's URL with initData in its fragment."""
    page.goto(f"/me/#tgWebAppData={quote(init_data(user_id), safe='')}&tgWebAppVersion=8.0&tgWebAppPlatform=ios")


def shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"dealer-{name}.png"), full_page=True)


def no_sideways_scroll(page: Page) -> None:
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")


def outlook(engine: Engine, contest_id: int, partner_id: int) -> prospects.Outlook:
    with session_scope(engine) as s:
        contest = s.get(Contest, contest_id)
        assert contest is not None
        standings.ensure_fresh(s, contest)
        found = prospects.outlook(s, contest=contest, partner_id=partner_id, team_id=None)
        assert found is not None
        return found


def test_a_dealer_sees_their_standing_and_what_if(phone: Page, engine: Engine, program: dict[str, int]) -> None:
    open_mini_app(phone, TG["P1"])
    card = phone.locator(f"#contest-{program['solo']}")
    expect(card.locator(".rank")).to_have_text(t("dealer.contest.rank", "zh", rank=4))
    expect(card.locator(".board li.mine")).to_contain_text("张三")
    expect(card.locator(".board li")).to_have_count(4)  # the top 3 and my own line
    expected = outlook(engine, program["solo"], program["id_P1"])
    shown = card.locator(".prospects li")
    expect(shown).to_have_count(len(expected.prospects))
    for i, p in enumerate(expected.prospects):
        item = shown.nth(i)
        expect(item).to_contain_text(t("dealer.whatif.more_revenue", "zh", amount=money(p.amount, "zh")))
        expect(item).to_contain_text(t("dealer.whatif.to_rank", "zh", rank=p.rank))
    calc = card.locator("form.calc")
    calc.locator("input").fill("12000.01")
    calc.locator("button").click()
    expect(calc.locator("output")).to_have_text(t("dealer.whatif.result_tier", "zh", rank=3, tier="铜牌"))
    calc.locator("input").fill("72000")
    calc.locator("button").click()
    expect(calc.locator("output")).to_have_text(t("dealer.whatif.result_tier", "zh", rank=1, tier="金牌"))
    no_sideways_scroll(phone)
    shot(phone, "dealer")


def test_a_captain_sees_the_team(phone: Page, program: dict[str, int]) -> None:
    open_mini_app(phone, TG["CAP"])
    team = phone.locator("#team")
    expect(team.locator("tbody tr")).to_have_count(3)
    expect(team).to_contain_text("李四")
    expect(team).to_contain_text(money(SALES["P2"] * 100, "zh"))
    race = phone.locator(f"#contest-{program['team']}")
    expect(race.locator(".board li.mine")).to_have_count(1)
    no_sideways_scroll(phone)
    shot(phone, "captain")


def test_an_unbound_visitor_sees_how_to_bind(phone: Page, program: dict[str, int]) -> None:
    open_mini_app(phone, STRANGER)
    expect(phone.locator("#unbound")).to_contain_text(t("dealer.unbound.how", "zh"))
    for name in ("张三", "赵六", "本月销售冠军"):
        expect(phone.locator("body")).not_to_contain_text(name)
    shot(phone, "unbound")


def test_opened_outside_any_app_it_says_where_to_open_it(phone: Page, program: dict[str, int]) -> None:
    phone.goto("/me/")
    expect(phone.locator("#where")).to_be_visible()
    shot(phone, "outside")


def test_the_page_updates_itself_after_a_sale(phone: Page, site: httpx.Client, program: dict[str, int]) -> None:
    open_mini_app(phone, TG["P1"])
    card = phone.locator(f"#contest-{program['solo']}")
    expect(card.locator(".rank")).to_have_text(t("dealer.contest.rank", "zh", rank=4))
    phone.wait_for_timeout(300)  # the event stream is open
    sale = {"id": "live-1", "partner": "P1", "occurred_at": utcnow().isoformat(), "amount": "25000", "units": 1}
    answer = site.post("/api/sales", json=[sale], headers={"Authorization": f"Bearer {API_TOKEN}"})
    assert answer.status_code == 200, answer.text
    expect(card.locator(".rank")).to_have_text(t("dealer.contest.rank", "zh", rank=3), timeout=10_000)
    cheer = phone.locator("#cheer")
    expect(cheer).to_be_visible()
    expect(cheer).to_have_text(t("dealer.live.tier", "zh", tier="银牌"))  # ¥53,000: silver, and 3rd
    shot(phone, "live")


@pytest.mark.parametrize("user", ["P1"])
def test_english_dealer(phone: Page, program: dict[str, int], user: str) -> None:
    open_mini_app(phone, 7400007)
    expect(phone.locator("#points h2")).to_have_text(t("dealer.points.title", "en"))
    shot(phone, "english")
