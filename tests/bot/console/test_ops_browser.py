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
from tests.support.browser import ARTIFACTS, tab
from tests.support.console_web import link_path
from tests.support.delivery import drain
from tests.support.fake_telegram import SECRET, WEBHOOK, FakeBotApi, bot_api

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
    with tab(browser, str(site.base_url), request, viewport={"width": 1280, "height": 900}) as opened:
        yield opened


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


@pytest.fixture
def redemptions(engine: Engine, bound: None) -> dict[str, int]:
    """P1 asked for a mug and CAP for a cap (each with the points for it)."""
    from models import points, rewards
    from tests.support.incentives import catalog

    now = utcnow()
    with session_scope(engine) as s:
        catalog(s, {"sku": "MUG", "name_zh": "马克杯", "name_en": "Mug", "points": 100, "stock": 5},
                {"sku": "CAP", "name_zh": "棒球帽", "name_en": "Cap", "points": 80, "stock": 2}, now=now)
        ids = dict(s.execute(select(Partner.code, Partner.id)).all())
        for code in ("P1", "CAP"):
            points.credit(s, ids[code], 200, "earned", {"code": "points.contest_prize"}, f"test:{code}", now)
        mug, _ = rewards.redeem(s, ids["P1"], "MUG", now)
        cap, _ = rewards.redeem(s, ids["CAP"], "CAP", now)
    return {"mug": mug.id, "cap": cap.id}


def test_approve_one_redemption_and_reject_another(page: Page, engine: Engine, fake: FakeBotApi,
                                                  redemptions: dict[str, int]) -> None:
    from tests.support.incentives import outbox

    sign_in(page)
    page.get_by_role("link", name=t("console.nav.ops.store", "zh")).click()
    mug = page.locator(f"#redemption-{redemptions['mug']}")
    expect(mug).to_contain_text("张三")
    expect(mug).to_contain_text("马克杯")
    shots(page, "store")
    mug.get_by_role("button", name=t("console.store.approve", "zh")).click()
    expect(page.locator(".note.ok")).to_have_text(t("console.store.done_approved", "zh", ref=redemptions["mug"]))
    expect(page.locator(f"#redemption-{redemptions['mug']}")).to_have_count(0)
    assert len(outbox(engine, f"redemption:{redemptions['mug']}:decided")) == 1

    cap = page.locator(f"#redemption-{redemptions['cap']}")
    cap.get_by_role("button", name=t("console.store.reject", "zh")).click()  # no reason: the browser asks for one
    expect(cap).to_be_visible()
    assert not outbox(engine, f"redemption:{redemptions['cap']}:decided")
    cap.get_by_placeholder(t("console.store.reason_hint", "zh")).fill("这款帽子已停产")
    cap.get_by_role("button", name=t("console.store.reject", "zh")).click()
    expect(page.locator(".note.ok")).to_have_text(t("console.store.done_rejected", "zh", ref=redemptions["cap"]))
    told = next(iter(outbox(engine, f"redemption:{redemptions['cap']}:decided").values()))["text"]
    assert "这款帽子已停产" in told
    expect(page.locator("#decided")).to_contain_text("这款帽子已停产")
    worker_draining(engine).join(timeout=30)
    got = {m["chat_id"]: m["text"] for m in fake.sent()}
    assert "马克杯" in got[str(CHATS["P1"])] and "这款帽子已停产" in got[str(CHATS["CAP"])]
    shots(page, "store-decided")


def test_create_a_training_and_check_in_with_the_shown_code_in_chat(page: Page, site: httpx.Client,
                                                                    engine: Engine, fake: FakeBotApi,
                                                                    bound: None) -> None:
    from tests.support.builders import SH
    from tests.support.fake_telegram import post, text_update

    sign_in(page)
    page.get_by_role("link", name=t("console.nav.ops.trainings", "zh")).click()
    form = page.locator("#new")
    form.locator("input[name=title]").fill("新品 X5 产品培训")
    form.locator("input[name=start]").fill(utcnow().astimezone(SH).strftime("%Y-%m-%dT%H:%M"))  # now: check-in open
    form.locator("input[name=place]").fill("上海 3 号会议室")
    form.locator("input[name=points]").fill("20")
    form.locator("select[name=team]").select_option("EAST")
    shots(page, "trainings")
    form.get_by_role("button", name=t("console.trainings.create", "zh")).click()
    code = page.locator("#checkin-code").inner_text().strip()
    assert len(code) == 6
    page.wait_for_function("() => { const i = document.querySelector('img.qr'); return i.complete && i.naturalWidth > 300; }")
    shots(page, "training")
    with page.expect_popup() as opened:
        page.get_by_role("link", name=t("console.trainings.screen", "zh")).click()
    screen = opened.value
    expect(screen.locator("#checkin-code")).to_contain_text(code)
    screen.set_viewport_size({"width": 1920, "height": 1080})
    screen.screenshot(path=str(ARTIFACTS / "training-screen-1920.png"))
    screen.close()

    assert post(site, text_update(next(_updates), f"签到 {code.lower()}", chat_id=CHATS["P1"])) == 200
    reply = fake.sent()[-1]
    assert reply["chat_id"] == str(CHATS["P1"]) and "新品 X5 产品培训" in reply["text"] and "20" in reply["text"]
    page.reload()
    people = page.locator("#people")
    expect(people).to_contain_text("张三")
    expect(people.locator(".tag.ok")).to_have_count(1)
    expect(page.locator("#report .figure").nth(1)).to_have_text("1")


def test_feedback_charts_are_drawn(page: Page, engine: Engine, bound: None) -> None:
    from models import feedback, trainings

    now = utcnow()
    with session_scope(engine) as s:
        item = trainings.create(s, trainings.TrainingSpec(title="安装培训", start_at=now - timedelta(hours=3),
                                                          duration_seconds=3600, place="线上"), now)
        ids = dict(s.execute(select(Partner.code, Partner.id)).all())
        asked = {r.partner_id: r for r in feedback.request(s, "training", item.id, [ids[c] for c in CHATS], now)}
        for code, rating in (("P1", 5), ("CAP", 4)):
            feedback.rate(s, asked[ids[code]].id, ids[code], rating, now)
        feedback.comment(s, asked[ids["P1"]], "讲得很清楚，希望多办几场", now)
    sign_in(page)
    page.goto(f"/admin/trainings/{item.id}")
    page.get_by_role("link", name=t("console.trainings.feedback", "zh", avg="4.50", n=2)).click()
    card = page.locator(f"#training-{item.id}")
    expect(card.locator(".feedback-chart canvas")).to_have_count(1)  # ECharts drew it, from the package
    expect(card).to_contain_text("讲得很清楚")
    shots(page, "feedback")
