"""The issue-7 flows end to end on Telegram: real Update JSON posted to /telegram/webhook, the replies
caught by the fake Bot API. Points and the rewards store (approve, reject with a refund, too few
points, sold out), a training (join, reminders, check-in), and a survey answered with the button.

The app runs without its background services: pushes stay in the outbox until a test drains it with
a `DeliveryWorker`, and the scheduler does not act on the real clock behind the test's back. The
chat core takes its time from `handlers.dispatch.utcnow`, which the `clock` fixture sets.
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Iterator
from datetime import datetime, timedelta

import httpx
import pytest
from sqlalchemy import Engine, select
from sqlmodel import Session

import handlers.dispatch
from bot.channels.telegram.push import TelegramPush
from bot.delivery.limiter import Ceilings
from bot.delivery.worker import DeliveryWorker
from bot.web.app import create_app
from handlers.feedback import queue_feedback_requests
from handlers.trainings import queue_reminders
from models import trainings
from models.db import session_scope
from models.identities import new_invite
from models.tables import FeedbackRequest, Outbox, Partner, Redemption
from tests.support.console import NOW
from tests.support.delivery import drain
from tests.support.fake_telegram import HEADERS, FakeBotApi, bot_api, sample, settings_for, text_update
from tests.support.incentives import balance, count, earn, entries, outbox, program, stock
from tests.support.live_app import live_app

CHATS = {"P1": 7100001, "P2": 7100002, "P3": 7100003, "BOSS": 7100009}
TOKEN = "123456:TEST-token"


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    c = Clock()
    monkeypatch.setattr(handlers.dispatch, "utcnow", c)
    return c


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeBotApi]:
    yield from bot_api(monkeypatch)


@pytest.fixture
def ids(engine: Engine) -> dict[str, int]:
    return program(engine)


class Chat:
    """Telegram users talking to the bot through the webhook."""

    def __init__(self, client: httpx.Client, fake: FakeBotApi, engine: Engine, clock: Clock) -> None:
        self.client, self.fake, self.engine, self.clock = client, fake, engine, clock
        self.update_ids = itertools.count(700_001)

    def _post(self, update: dict, chat_id: int, at: datetime | None) -> str:
        self.clock.now = at or NOW
        before = len(self.fake.sent("sendMessage"))
        assert self.client.post("/telegram/webhook", json=update, headers=HEADERS).status_code == 200
        new = self.fake.sent("sendMessage")[before:]
        assert new and {m["chat_id"] for m in new} == {str(chat_id)}, new
        return "\n".join(m["text"] for m in new)

    def say(self, who: str, text: str, at: datetime | None = None) -> str:
        """`who` types `text`; returns what the bot answered in that chat."""
        update = text_update(next(self.update_ids), text, chat_id=CHATS[who])
        return self._post(update, CHATS[who], at)

    def press(self, who: str, data: str, at: datetime | None = None) -> str:
        """`who` taps an inline button carrying `data`."""
        update = copy.deepcopy(sample("callback_query", update_id=next(self.update_ids)))
        query = update["callback_query"]
        query["id"] = f"cb-{update['update_id']}"
        query["from"]["id"] = query["message"]["chat"]["id"] = CHATS[who]
        query["message"]["reply_markup"] = {"inline_keyboard": [[{"text": "5 分", "callback_data": data}]]}
        query["data"] = data
        acks = len(self.fake.sent("answerCallbackQuery"))
        reply = self._post(update, CHATS[who], at)
        assert [a["callback_query_id"] for a in self.fake.sent("answerCallbackQuery")[acks:]] == [query["id"]]
        return reply

    def bind(self, who: str) -> None:
        """`/start CODE` with a fresh invite for partner `who`, as the deep link does."""
        with session_scope(self.engine) as s:
            partner = s.execute(select(Partner).where(Partner.code == who)).scalar_one()
            code = new_invite(s, partner, now=NOW).code
        reply = self.say(who, f"/start {code}")
        assert "绑定成功" in reply or "linked" in reply, reply

    def deliver(self) -> list[dict]:
        """Drain the outbox to the fake Bot API; returns the pushes it received."""
        before = len(self.fake.sent("sendMessage"))
        drain(DeliveryWorker(self.engine, {"telegram": TelegramPush(TOKEN, self.fake.base_url)},
                             {"telegram": Ceilings(40, 0.0, 20)}, clock=lambda: self.clock.now))
        return self.fake.sent("sendMessage")[before:]


@pytest.fixture
def chat(db_url: str, engine: Engine, fake: FakeBotApi, clock: Clock, ids: dict[str, int]) -> Iterator[Chat]:
    with live_app(create_app(settings_for(fake), background=False)) as client:
        yield Chat(client, fake, engine, clock)


def to(pushes: list[dict], who: str) -> list[str]:
    return [p["text"] for p in pushes if p["chat_id"] == str(CHATS[who])]


# --- the rewards store -------------------------------------------------------------------------------


def test_redeem_then_approve_on_telegram(chat: Chat, engine: Engine, ids: dict[str, int]) -> None:
    earn(engine, ids["P1"], 300)
    chat.bind("P1")
    chat.bind("BOSS")
    assert chat.say("P1", "积分商城").splitlines()[0] == "🎁 积分商城 · 您的积分：300"
    reply = chat.say("P1", "兑换 mug")
    assert reply.startswith("✅ 已提交兑换申请 #1：马克杯（100 积分）") and "当前余额 200" in reply
    assert balance(engine, ids["P1"]) == 200 and stock(engine, "MUG") == 4

    pushes = chat.deliver()  # the admin hears of the request on Telegram
    [note] = to(pushes, "BOSS")
    assert "New redemption #1: 经销商1 (P1) asks for Mug" in note
    assert "#1 经销商1 (P1) Mug, 100 points" in chat.say("BOSS", "/rewards")
    assert "仅限渠道经理" in chat.say("P1", "批准 1")
    assert chat.say("BOSS", "/approve 1").startswith("Approved redemption #1: Mug for 经销商1")
    assert "already decided (approved)" in chat.say("BOSS", "/approve 1")
    assert "already decided" in chat.say("BOSS", "/reject 1 太晚了")

    [told] = to(chat.deliver(), "P1")
    assert told.startswith("🎉 您的兑换申请 #1 已通过：马克杯")
    assert balance(engine, ids["P1"]) == 200 and stock(engine, "MUG") == 4
    assert entries(engine, ids["P1"]) == [("earned", 300), ("spent", -100)]
    with Session(engine) as s:
        r = s.get(Redemption, 1)
        assert r is not None and r.status == "approved" and r.decided_by == ids["BOSS"]
    assert "-100  积分兑换" in chat.say("P1", "我的")


def test_redeem_then_reject_refunds_and_tells_the_partner(chat: Chat, engine: Engine, ids: dict[str, int]) -> None:
    earn(engine, ids["P1"], 150)
    chat.bind("P1")
    chat.bind("BOSS")
    assert "#1" in chat.say("P1", "/redeem MUG")
    assert balance(engine, ids["P1"]) == 50 and stock(engine, "MUG") == 4
    reply = chat.say("BOSS", "驳回 1 本月库存盘点中")
    assert reply.startswith("Declined redemption #1: Mug for 经销商1; 100 points and the stock are back")
    assert balance(engine, ids["P1"]) == 150 and stock(engine, "MUG") == 5
    assert entries(engine, ids["P1"]) == [("earned", 150), ("spent", -100), ("refunded", 100)]
    assert "already decided (declined)" in chat.say("BOSS", "驳回 1 again")  # refunded once only
    assert balance(engine, ids["P1"]) == 150

    assert "redemption:1:decided" in outbox(engine, "redemption:1:")
    pushes = chat.deliver()
    [told] = to(pushes, "P1")
    assert "未通过，原因：本月库存盘点中" in told and "100 积分已退回，当前余额 150" in told
    assert chat.deliver() == []  # once
    with Session(engine) as s:
        r = s.get(Redemption, 1)
        assert r is not None and (r.status, r.note, r.decided_by) == ("rejected", "本月库存盘点中", ids["BOSS"])
        assert s.execute(select(Outbox.sent_at).where(Outbox.key == "redemption:1:decided")).scalar_one()
    me = chat.say("P1", "我的")
    assert "+100  兑换退回" in me and "-100  积分兑换" in me


def test_redeem_with_too_few_points_changes_nothing(chat: Chat, engine: Engine, ids: dict[str, int]) -> None:
    earn(engine, ids["P1"], 99)
    chat.bind("P1")
    assert chat.say("P1", "兑换 MUG") == "积分不足：需要 100 积分，您现有 99 积分，还差 1 积分。"
    assert chat.say("P1", "/redeem TV").startswith("积分不足：需要 5,000 积分")
    assert balance(engine, ids["P1"]) == 99 and stock(engine, "MUG") == 5 and stock(engine, "TV") == 1
    assert count(engine, Redemption) == 0 and outbox(engine) == {}
    assert entries(engine, ids["P1"]) == [("earned", 99)]


def test_redeem_out_of_stock(chat: Chat, engine: Engine, ids: dict[str, int]) -> None:
    earn(engine, ids["P1"], 10_000)
    earn(engine, ids["P2"], 10_000)
    chat.bind("P1")
    chat.bind("P2")
    assert chat.say("P1", "兑换 PEN") == "抱歉，商品 PEN 已经兑完了。"
    assert "#1" in chat.say("P1", "兑换TV")  # the last television
    assert chat.say("P2", "兑换 TV") == "抱歉，商品 TV 已经兑完了。"
    assert chat.say("P2", "兑换 OLD") == "商品 OLD 已下架。"
    assert "没有编号为 NOPE 的商品" in chat.say("P2", "兑换 NOPE")
    assert stock(engine, "TV") == 0 and stock(engine, "PEN") == 0
    assert balance(engine, ids["P1"]) == 5_000 and balance(engine, ids["P2"]) == 10_000
    assert count(engine, Redemption) == 1


def test_an_unbound_telegram_user_cannot_redeem(chat: Chat, engine: Engine, ids: dict[str, int]) -> None:
    assert chat.say("P3", "兑换 MUG").startswith("您还没有绑定经销商账号")
    assert count(engine, Redemption) == 0 and stock(engine, "MUG") == 5


# --- trainings ---------------------------------------------------------------------------------------

START = NOW + timedelta(days=2)  # 2026-11-22 12:00 Shanghai


def remind(engine: Engine, now: datetime) -> int:
    with session_scope(engine) as s:
        return queue_reminders(s, now)


def test_join_reminders_then_check_in(chat: Chat, engine: Engine, ids: dict[str, int]) -> None:
    with session_scope(engine) as s:
        tid = trainings.create(s, trainings.TrainingSpec("渠道政策培训", START, 90 * 60, "上海 会议室A", None, 50,
                                                         "ABC123"), NOW).id
    chat.bind("P1")
    chat.bind("P2")
    assert "🕒 11-22 12:00–13:30 · 📍 上海 会议室A · 签到得 50 积分" in chat.say("P1", "培训")
    assert chat.say("P1", f"报名 {tid}").startswith(f"✅ 报名成功：#{tid} 渠道政策培训，11-22 12:00")
    assert chat.say("P1", f"/training join {tid}").startswith("您已经报名了")

    assert remind(engine, START - timedelta(hours=24, minutes=1)) == 0
    assert remind(engine, START - timedelta(hours=23, minutes=58)) == 1
    assert remind(engine, START - timedelta(hours=23, minutes=50)) == 0
    key24 = f"training:{tid}:remind24:partner:{ids['P1']}"
    assert list(outbox(engine, "training:")) == [key24]
    chat.clock.now = START - timedelta(hours=23, minutes=50)
    [tomorrow] = to(chat.deliver(), "P1")
    assert tomorrow.startswith("⏰ 培训提醒：明天这个时候开始") and "签到可得 50 积分" in tomorrow

    assert "报名成功" in chat.say("P2", f"报名 {tid}", START - timedelta(hours=3))
    assert remind(engine, START - timedelta(hours=2)) == 0
    assert remind(engine, START - timedelta(minutes=59)) == 2
    assert remind(engine, START + timedelta(minutes=5)) == 0
    assert list(outbox(engine, "training:")) == [key24, f"training:{tid}:remind1:partner:{ids['P1']}",
                                                 f"training:{tid}:remind1:partner:{ids['P2']}"]
    chat.clock.now = START - timedelta(minutes=59)
    pushes = chat.deliver()
    hour = to(pushes, "P1") + to(pushes, "P2")
    assert len(hour) == 2 and all(t.startswith("⏰ 培训提醒：1 小时后开始") for t in hour)

    before = balance(engine, ids["P1"])
    assert "还没开始，11-22 12:00 开始后才能签到" in chat.say("P1", "签到 ABC123", START - timedelta(minutes=5))
    wrong = chat.say("P1", "签到 WRONG1", START + timedelta(minutes=2))
    assert wrong == "签到码不正确，请核对后重试（还可以尝试 4 次）。"
    assert balance(engine, ids["P1"]) == before
    ok = chat.say("P1", "签到 abc123", START + timedelta(minutes=3))
    assert ok == f"✅ 签到成功：渠道政策培训。获得 50 积分，当前余额 {before + 50}。"
    assert chat.say("P1", "/checkin ABC123", START + timedelta(minutes=4)) == "您已经签到过了：渠道政策培训。"
    assert balance(engine, ids["P1"]) == before + 50 and entries(engine, ids["P1"])[-1] == ("earned", 50)
    too_late = chat.say("P2", "签到 ABC123", START + timedelta(minutes=31))
    assert too_late == "签到已截止（12:30）：渠道政策培训 只能在开始后 30 分钟内签到。"
    assert balance(engine, ids["P2"]) == 0


# --- feedback ----------------------------------------------------------------------------------------


def test_feedback_button_out_of_range_then_valid(chat: Chat, engine: Engine, ids: dict[str, int]) -> None:
    start = NOW + timedelta(hours=2)
    end = start + timedelta(minutes=90)
    with session_scope(engine) as s:
        tid = trainings.create(s, trainings.TrainingSpec("渠道政策培训", start, 5400, "上海", None, 10, "ABC123"),
                               NOW).id
    for who in ("P1", "P2"):
        chat.bind(who)
        assert "报名成功" in chat.say(who, f"报名 {tid}")
        assert "签到成功" in chat.say(who, "签到 ABC123", start + timedelta(minutes=5))
    with session_scope(engine) as s:
        assert queue_feedback_requests(s, end + timedelta(minutes=1)) == 2
    with Session(engine) as s:
        rid = {r.partner_id: r.id for r in s.execute(select(FeedbackRequest)).scalars()}

    chat.clock.now = end + timedelta(minutes=1)
    pushes = chat.deliver()  # the survey arrives with 1–5 inline buttons
    [survey] = [p for p in pushes if p["chat_id"] == str(CHATS["P1"])]
    assert survey["text"].startswith("📝 培训“渠道政策培训”已结束，请为它打个分")
    buttons = [[(b["text"], b["callback_data"]) for b in row] for row in survey["reply_markup"]["inline_keyboard"]]
    assert [b for row in buttons for b in row] == [(f"{n} 分", f"fb:{rid[ids['P1']]}:{n}") for n in range(1, 6)]

    later = end + timedelta(minutes=10)
    mine, theirs = rid[ids["P1"]], rid[ids["P2"]]
    assert chat.press("P1", f"fb:{mine}:9", later).startswith("请回复 1 到 5 之间的数字")  # a forged rating
    assert chat.say("P1", "6", later) == "请回复 1 到 5 之间的数字（5 = 非常满意，1 = 很不满意）。"
    assert "已失效或不存在" in chat.press("P1", f"fb:{theirs}:1", later)  # someone else's survey
    with Session(engine) as s:
        assert [r.rating for r in s.execute(select(FeedbackRequest).order_by(FeedbackRequest.id)).scalars()] == [
            None, None]
    assert chat.press("P1", f"fb:{mine}:4", later).startswith("谢谢您的评分（4 分）")
    assert chat.press("P1", f"fb:{mine}:5", later) == "您已经评过分了，谢谢！"
    assert chat.say("P1", "讲得很清楚", later) == "收到，谢谢您的宝贵意见！"
    with Session(engine) as s:
        first = s.get(FeedbackRequest, mine)
        other = s.get(FeedbackRequest, theirs)
        assert first is not None and (first.rating, first.comment) == (4, "讲得很清楚")
        assert other is not None and other.rating is None
