"""Contests and the meeting-room board in a real browser (Debian's Chromium under Playwright): create a
contest with the form (its rules shown live, as the chat will say them) and find it in `比赛`
through the chat; edit it before its start; cancel one; close one and find the winners' post
queued; the TV board following a sale posted to `/api/sales`, nobody below the top N on it.
Screenshots of each page go to `.test-artifacts/` (1280 wide; the board at 1920×1080)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect
from sqlalchemy import Engine, func, select

from messages.render import t
from models import board_links
from models.db import session_scope
from models.tables import Contest, Outbox, Partner, TeamChat
from models.values import utcnow
from tests.support import builders as b
from tests.support.browser import ARTIFACTS
from tests.support.builders import SH
from tests.support.console import ask, bound
from tests.support.console_web import link_path

TOKEN = "api-token-0123456789"


def day(offset: int) -> str:
    return (utcnow().astimezone(SH) + timedelta(days=offset)).date().isoformat()


def shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"contests-{name}.png"), full_page=True)


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch) -> None:
    """The ingestion API on (before the app starts: list it before `page`)."""
    monkeypatch.setenv("MIANZI_API_TOKEN", TOKEN)


def sign_in(page: Page) -> None:
    page.goto(link_path("BOSS"))
    page.get_by_role("button", name=t("console.signin.button", "zh")).click()
    expect(page).to_have_url(f"{page.url.split('/admin')[0]}/admin/")


def one(engine: Engine, statement: object) -> int:
    with session_scope(engine) as s:
        return int(s.execute(statement).scalar_one() or 0)  # type: ignore[call-overload]


def test_create_a_contest_and_find_it_in_the_chat(page: Page, engine: Engine) -> None:
    sign_in(page)
    page.locator("nav.nav").get_by_role("link", name=t("console.nav.contests", "zh")).click()
    page.get_by_role("link", name=t("console.contests.new", "zh")).click()
    preview = page.locator("#preview")
    page.fill("input[name=name]", "十二月冲刺赛")
    page.fill("input[name=start_date]", day(0))
    page.fill("input[name=end_date]", day(25))
    page.select_option("select[name=seg_team]", "EAST")
    page.fill("input[name=prize_rank_0]", "1")
    page.fill("input[name=prize_points_0]", "800")
    page.fill("input[name=tier_name_0]", "金牌")
    page.fill("input[name=tier_threshold_0]", "50000")
    page.fill("input[name=tier_points_0]", "300")
    page.locator("input[name=tier_rebate_0]").press_sequentially("2")  # typed: keyup, as a person types
    zh = preview.locator("pre[data-locale=zh]")
    expect(zh).to_contain_text("金牌（≥ ¥50,000.00）300 积分 + 返利 2%")  # live, as the form changes
    expect(zh).to_contain_text("参赛范围：团队=EAST")
    expect(preview.locator("pre[data-locale=en]")).to_contain_text("#1 800 points")
    expect(preview.locator("[data-count=in_segment]")).to_have_text("2")  # P1 and CAP, not the admins
    page.fill("input[name=tier_threshold_0]", "")
    page.locator("input[name=tier_threshold_0]").press_sequentially("很多")
    expect(preview.locator("[data-preview=error]")).to_contain_text("很多")
    page.fill("input[name=tier_threshold_0]", "")
    page.locator("input[name=tier_threshold_0]").press_sequentially("50000")
    expect(zh).to_contain_text("¥50,000.00")
    shot(page, "create")
    page.get_by_role("button", name=t("console.contests.create", "zh")).click()
    expect(page.locator("#done")).to_have_text(t("console.contests.done_created", "zh"))
    shot(page, "created")
    contest_id = one(engine, select(func.max(Contest.id)))
    user = bound(engine, "P1", now=utcnow())
    reply = ask(engine, user, "比赛", now=utcnow())
    assert f"#{contest_id} 十二月冲刺赛" in reply and "金牌（≥ ¥50,000.00）300 积分 + 返利 2%" in reply
    assert page.locator("#rules pre").text_content() == reply  # the page shows what the chat says


def test_edit_before_the_start(page: Page, engine: Engine) -> None:
    with session_scope(engine) as s:
        ident = b.contest(s, name="下月赛", start=day(10), end=day(40), prizes="1=500").id
    sign_in(page)
    page.goto(f"/admin/contests/{ident}")
    page.get_by_role("link", name=t("console.contests.edit", "zh")).click()
    expect(page.locator("select[name=metric]")).to_be_enabled()  # not started: everything may change
    page.select_option("select[name=metric]", "units")
    page.fill("input[name=end_date]", day(45))
    expect(page.locator("#preview pre[data-locale=zh]")).to_contain_text("销量")
    shot(page, "edit")
    page.get_by_role("button", name=t("console.contests.save", "zh")).click()
    expect(page.locator("#done")).to_be_visible()
    expect(page.locator("#history")).to_contain_text(t("field.metric", "zh"))
    with session_scope(engine) as s:
        contest = s.get(Contest, ident)
        assert contest is not None and contest.metric == "units"
        assert contest.end_at.date().isoformat() == day(45)  # the end date inclusive: 24:00 Beijing = 16:00 UTC


def test_cancel_a_contest(page: Page, engine: Engine) -> None:
    with session_scope(engine) as s:
        ident = b.contest(s, name="建错的比赛", start=day(-2), end=day(20)).id
    sign_in(page)
    page.goto(f"/admin/contests/{ident}")
    page.locator("#cancel summary").click()
    page.get_by_role("button", name=t("console.contests.cancel_confirm", "zh")).click()
    expect(page.locator("#done")).to_contain_text(t("console.contests.done_cancelled", "zh", queued=0)[:8])
    expect(page.locator("h1 .tag")).to_have_text(t("status.cancelled", "zh"))
    page.goto("/admin/contests")
    expect(page.locator("#cancelled")).to_contain_text("建错的比赛")
    with session_scope(engine) as s:
        contest = s.get(Contest, ident)
        assert contest is not None and contest.cancelled_at is not None and contest.cancelled_by == "BOSS"


def test_close_now_and_the_winners_post_is_queued(page: Page, engine: Engine) -> None:
    """A contest whose period ended an hour ago, a day of grace left: closed now from the console."""
    yesterday = day(-1) + "T10:00"
    with session_scope(engine) as s:
        b.partners(s, {"code": "P2", "name": "李四", "team": "EAST"})
        b.sales(s, {"id": "a", "partner": "P1", "occurred_at": yesterday, "amount": "52000"},
                {"id": "c", "partner": "P2", "occurred_at": yesterday, "amount": "18000"})
        contest = b.contest(s, name="上周冲刺", start=day(-7), end=day(-1), prizes="1=500,2=300", grace_seconds=86400)
        contest.end_at = utcnow() - timedelta(hours=1)
        ident = contest.id
        team = s.execute(select(Partner.team_id).where(Partner.code == "P1")).scalar_one()
        s.add(TeamChat(team_id=team, platform="console", chat_ref="group-east", linked_at=utcnow()))
    bound(engine, "P1", now=utcnow())
    sign_in(page)
    page.goto(f"/admin/contests/{ident}")
    page.get_by_role("link", name=t("console.contests.close_now", "zh")).click()
    post = page.locator("#winners-post")
    expect(post).to_contain_text("张三")
    expect(page.locator("ul.will")).to_contain_text(t("console.contests.close_will_groups", "zh", count=1))
    shot(page, "close")
    page.get_by_role("button", name=t("console.contests.close_confirm", "zh")).click()
    expect(page.locator("#done")).to_be_visible()
    expect(page.locator("tr[data-code=P1]")).to_contain_text("500")
    shot(page, "results")
    with session_scope(engine) as s:
        rows = list(s.execute(select(Outbox).where(Outbox.kind.in_(("announcement", "result")))).scalars())
        group = [r.payload["text"] for r in rows if r.chat_ref == "group-east" and "text" in r.payload]
        assert len(group) == 1 and "张三" in group[0] and "冠军" in group[0]  # (and the board as an image)
        assert any(r.kind == "result" and r.partner_id is not None for r in rows)  # P1's own result
    with page.expect_download() as download:
        page.get_by_role("link", name=t("console.contests.download_xlsx", "zh")).click()
    assert download.value.suggested_filename == f"contest-{ident}-results.xlsx"


@pytest.fixture
def tv(browser: Browser, site: httpx.Client) -> Iterator[Page]:
    """A 1080p screen in a meeting room: no cookie, nobody signed in."""
    context = browser.new_context(base_url=str(site.base_url), viewport={"width": 1920, "height": 1080},
                                  locale="zh-CN")
    context.set_default_timeout(15_000)
    yield context.new_page()
    context.close()


def test_the_tv_board_follows_a_sale_posted_to_the_api(api: None, tv: Page, site: httpx.Client,
                                                       engine: Engine) -> None:
    with session_scope(engine) as s:
        b.partners(s, *({"code": f"D{i:02d}", "name": f"经销商{i:02d}", "team": "EAST" if i % 2 else "WEST"}
                        for i in range(12)))
        b.sales(s, *({"id": f"y{i}", "partner": f"D{i:02d}", "occurred_at": day(-1) + "T10:00",
                      "amount": str(50000 - i * 3000)} for i in range(12)))
        contest = b.contest(s, name="十二月销售冠军", start=day(-3), end=day(20), top_n=5,
                            tiers="银牌=40000:100,金牌=60000:300")
        token = board_links.create(s, contest_id=contest.id, by=None, now=utcnow()).token
    tv.goto(f"/board/{token}")
    lines = tv.locator("ol.tv-lines li")
    expect(lines).to_have_count(5)
    expect(lines.first).to_contain_text("经销商00")
    expect(tv.locator("#board")).to_have_attribute("data-version", "1")  # the stream's first board
    shot(tv, "board")
    sale = {"id": "big", "partner": "D09", "occurred_at": utcnow().astimezone(SH).strftime("%Y-%m-%dT%H:%M"),
            "amount": "80000", "units": 2}
    posted = httpx.post(f"{str(site.base_url).rstrip('/')}/api/sales", json=[sale],
                        headers={"Authorization": f"Bearer {TOKEN}"})
    assert posted.status_code == 200, posted.text
    expect(lines.first).to_contain_text("经销商09")  # no reload: the event stream brought it
    expect(tv.locator(".tv-cheer")).to_contain_text("经销商09 登上第一")
    expect(tv.locator("body")).to_have_class("tv cheer")
    expect(tv.locator("[data-tier=金牌]")).to_have_text("1")
    tv.wait_for_timeout(700)  # the cheer at its height
    shot(tv, "board-cheer")
    text = tv.locator("body").inner_text()
    for i in range(4, 12):  # D00..D03 and D09 are the top 5; nobody below is named
        assert f"经销商{i:02d}" not in text or i == 9
    assert tv.evaluate("document.documentElement.scrollWidth") <= 1920
    assert tv.evaluate("document.documentElement.scrollHeight") <= 1080


def test_the_contests_pages_fit_a_phone(browser: Browser, site: httpx.Client, engine: Engine) -> None:
    with session_scope(engine) as s:
        ident = b.contest(s, name="手机上看", start=day(-2), end=day(20), prizes="1=500",
                          tiers="银牌=30000:100:1.5").id
    context = browser.new_context(base_url=str(site.base_url), viewport={"width": 390, "height": 844},
                                  is_mobile=True, locale="zh-CN")
    phone = context.new_page()
    sign_in(phone)
    for name, path in (("list", "/admin/contests"), ("new", "/admin/contests/new"),
                       ("page", f"/admin/contests/{ident}"), ("edit", f"/admin/contests/{ident}/edit")):
        phone.goto(path)
        assert phone.evaluate("document.documentElement.scrollWidth") <= 390, path
        shot(phone, f"phone-{name}")
    context.close()
