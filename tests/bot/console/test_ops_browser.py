"""Broadcasts, the store and trainings in a real browser (Debian's Chromium under Playwright), with
Telegram on against the fake Bot API (issue 16): a broadcast to a segment, its preview, confirm,
and its delivery followed live to "all sent" while a delivery worker drains the outbox; a
redemption approved and another rejected (each partner's push queued); a training created and
checked in to with the code the console shows, through the Telegram webhook.

Screenshots of each page at 1280 and 390 px wide go to `.test-artifacts/` (looked at by hand)."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect
from sqlalchemy import Engine, select

from bot.channels.registry import ceilings, push_senders
from bot.delivery.worker import DeliveryWorker
from bot.settings import get_settings
from messages.render import t
from models.db import session_scope
from models.tables import ChatIdentity, Outbox, Partner
from models.values import utcnow
from tests.support import builders as b
from tests.support.console_web import link_path
from tests.support.delivery import drain
from tests.support.fake_telegram import SECRET, WEBHOOK, FakeBotApi, bot_api

ARTIFACTS = Path(".test-artifacts")
CHATS = {"P1": 8100001, "CAP": 8100002, "W1": 8100003}
_updates = itertools.count(770_001)


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeBotApi]:
    yield from bot_api(monkeypatch)


@pytest.fixture(autouse=True)
def telegram_on(monkeypatch: pytest.MonkeyPatch, fake: FakeBotApi) -> None:
    """The console's app (the `site` fixture) with Telegram on, against the fake Bot API."""
    for name, value in {"MIANZI_TELEGRAM_TOKEN": "123456:TEST-token", "MIANZI_TELEGRAM_API_URL": fake.base_url,
                        "MIANZI_TELEGRAM_WEBHOOK_URL": WEBHOOK, "MIANZI_TELEGRAM_SECRET": SECRET,
                        "MIANZI_TELEGRAM_BOT_USERNAME": fake.username}.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()


@pytest.fixture
def bound(engine: Engine, admins: None) -> None:
    """P1 and CAP (华东) and W1 (华南) on Telegram."""
    now = utcnow()
    with session_scope(engine) as s:
        b.partners(s, {"code": "W1", "name": "赵六", "team": "WEST", "region": "华南"})
        for code, chat in CHATS.items():
            pid = s.execute(select(Partner.id).where(Partner.code == code)).scalar_one()
            s.add(ChatIdentity(partner_id=pid, platform="telegram", user_ref=str(chat), chat_ref=str(chat),
                               bound_at=now - timedelta(days=3), last_seen_at=now - timedelta(days=1)))


@pytest.fixture
def page(browser: Browser, site: httpx.Client, request: pytest.FixtureRequest) -> Iterator[Page]:
    context = browser.new_context(base_url=str(site.base_url), viewport={"width": 1280, "height": 900},
                                  locale="zh-CN")
    context.set_default_timeout(15_000)
    tab = context.new_page()
    yield tab
    failed = getattr(request.node, "report_call", None)
    if failed is not None and failed.failed:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        tab.screenshot(path=str(ARTIFACTS / f"{request.node.name}.png"), full_page=True)
    context.close()


def sign_in(page: Page) -> None:
    page.goto(link_path("BOSS"))
    page.get_by_role("button", name=t("console.signin.button", "zh")).click()
    expect(page).to_have_url(f"{page.url.split('/admin')[0]}/admin/")


def shots(page: Page, name: str) -> None:
    """The page at 1280 px and at 390 px (a phone) wide, for a person to look at; no sideways scroll on the phone."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.set_viewport_size({"width": 1280, "height": 900})
    page.screenshot(path=str(ARTIFACTS / f"{name}-1280.png"), full_page=True)
    page.set_viewport_size({"width": 390, "height": 844})
    page.screenshot(path=str(ARTIFACTS / f"{name}-390.png"), full_page=True)
    assert page.evaluate("document.documentElement.scrollWidth") <= 390, name
    page.set_viewport_size({"width": 1280, "height": 900})


def worker_draining(engine: Engine) -> threading.Thread:
    """A delivery worker sending what is due through the configured channels, in its own thread
    (its own event loop: Playwright's runs in this one), as `mianzi serve` runs it."""
    settings = get_settings()
    worker = DeliveryWorker(engine, push_senders(settings, engine), ceilings(settings), backoff=0.05)
    thread = threading.Thread(target=drain, args=(worker,), name="delivery", daemon=True)
    thread.start()
    return thread


def test_a_broadcast_to_a_segment_previewed_confirmed_and_followed_to_all_sent(
        page: Page, engine: Engine, fake: FakeBotApi, bound: None) -> None:
    sign_in(page)
    page.get_by_role("link", name=t("console.nav.ops.broadcasts", "zh")).click()
    page.get_by_role("link", name=t("console.broadcasts.new", "zh")).click()
    page.locator("textarea[name=text]").fill("华东区 12 月促销政策已更新，详情请咨询渠道经理。")
    count = page.locator("#audience-count .figure")
    expect(count).to_have_text("3")  # everyone bound: P1, CAP, W1
    page.locator("select[name=region]").select_option("华东")
    expect(count).to_have_text("2")  # the count follows the pick (htmx)
    page.locator("select[name=platform]").select_option("telegram")
    expect(count).to_have_text("2")
    shots(page, "broadcast-compose")
    page.get_by_role("button", name=t("console.broadcasts.preview", "zh")).click()

    expect(page.locator(".telegram .bubble")).to_contain_text("华东区 12 月促销政策已更新")
    expect(page.locator(".telegram .bubble")).to_contain_text("—— 孙经理")
    who = page.locator("table.recipients")
    expect(who).to_contain_text("张三")
    expect(who).to_contain_text("王队长")
    expect(who).not_to_contain_text("赵六")
    shots(page, "broadcast-preview")
    assert fake.sent() == []  # nothing goes before the confirmation
    page.get_by_role("button", name=t("console.broadcasts.confirm_now", "zh", n=2)).click()

    progress = page.locator("#progress")
    expect(progress).to_have_attribute("data-done", "no")
    expect(progress).to_contain_text(t("console.broadcasts.sending", "zh", done=0, n=2))
    worker = worker_draining(engine)
    expect(page.locator("#all-sent")).to_have_text(t("console.broadcasts.all_sent", "zh", n=2))  # live, no reload
    worker.join(timeout=30)
    expect(progress).to_have_attribute("data-done", "yes")
    sent = {m["chat_id"]: m["text"] for m in fake.sent()}
    assert set(sent) == {str(CHATS["P1"]), str(CHATS["CAP"])}
    assert all("华东区 12 月促销政策已更新" in text for text in sent.values())
    with session_scope(engine) as s:
        assert set(s.execute(select(Outbox.status)).scalars()) == {"sent"}
    shots(page, "broadcast-sent")


def test_who_did_not_get_a_broadcast_is_listed_with_the_reason(site: httpx.Client, engine: Engine, fake: FakeBotApi,
                                                              bound: None) -> None:
    from tests.support.console_web import signed_in

    fake.fail_chat(CHATS["CAP"], 403, "Forbidden: bot was blocked by the user")
    csrf = signed_in(site, "BOSS")
    where = site.post("/admin/broadcasts", data={"csrf": csrf, "text": "通知", "team": "EAST"}).headers["location"]
    assert site.post(where + "/confirm", data={"csrf": csrf}).status_code == 303
    worker_draining(engine).join(timeout=30)
    part = site.get(where + "/progress").text
    assert 'data-done="yes"' in part and "hx-trigger" not in part  # finished: the page stops polling
    assert t("console.broadcasts.finished", "zh", sent=1, missed=1) in part
    missed = part.split('class="list missed"')[1]
    assert "王队长" in missed and "bot was blocked by the user" in missed and "张三" not in missed
    assert t("console.broadcasts.state_blocked", "zh") in missed
