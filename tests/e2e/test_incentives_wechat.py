"""Issue 7's flows end to end over the WeChat Official Account callback: signed plaintext XML text messages
in Chinese posted to /wechat/callback, the passive reply XML read back, pushes asserted as outbox rows.

The callback runs the core at the real current time, so trainings are created relative to it; the scheduler
jobs (reminders, surveys) are called directly with explicit times.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
import pytest
from sqlalchemy import Engine, select
from sqlmodel import Session
from starlette.applications import Starlette

from bot.channels.wechat.official_account import wechat_routes
from handlers.feedback import queue_feedback_requests
from handlers.trainings import queue_reminders
from models import trainings
from models.db import session_scope
from models.identities import new_invite
from models.tables import FeedbackRequest, Outbox, Partner, Redemption
from models.values import utcnow
from tests.support import official_account
from tests.support.fake_wechat import http_client
from tests.support.incentives import balance, count, earn, entries, outbox, program, stock
from tests.support.official_account import settings

SH = ZoneInfo("Asia/Shanghai")
OPENIDS = {"P1": "oWx_partner_one_000000000001", "P2": "oWx_partner_two_000000000002",
           "BOSS": "oWx_admin_boss_000000000009"}


@pytest.fixture
def client(db_url: str, engine: Engine) -> Iterator[httpx.Client]:
    with http_client(Starlette(routes=wechat_routes(settings(db_url), engine))) as c:
        yield c


@pytest.fixture
def ids(engine: Engine) -> dict[str, int]:
    return program(engine)


def say(client: httpx.Client, code: str, content: str) -> str:
    """`content` typed by partner `code` on WeChat; the passive reply's text."""
    return official_account.say(client, content, OPENIDS[code])


def bind(client: httpx.Client, engine: Engine, code: str) -> None:
    with session_scope(engine) as s:
        partner = s.execute(select(Partner).where(Partner.code == code)).scalar_one()
        invite = new_invite(s, partner).code
    reply = say(client, code, f"绑定 {invite}")
    assert "绑定成功" in reply or "linked" in reply, reply


def pushed(engine: Engine, key: str) -> Outbox:
    with Session(engine) as s:
        return s.execute(select(Outbox).where(Outbox.key == key)).scalar_one()


def assert_to_wechat(row: Outbox, code: str) -> None:
    assert (row.platform, row.chat_ref, row.is_group, row.status) == ("wechat", OPENIDS[code], False, "pending")


def minute() -> datetime:
    return utcnow().replace(second=0, microsecond=0)


def training(engine: Engine, title: str, start: datetime, code: str, minutes: int = 60, points: int = 50) -> int:
    with session_scope(engine) as s:
        spec = trainings.TrainingSpec(title, start, minutes * 60, "上海 会议室A", None, points, code)
        return trainings.create(s, spec, utcnow()).id  # type: ignore[return-value]


# ---- rewards store --------------------------------------------------------------------------------------------


def test_store_lists_what_the_partner_can_afford_first(client: httpx.Client, engine: Engine,
                                                       ids: dict[str, int]) -> None:
    earn(engine, ids["P1"], 300)
    bind(client, engine, "P1")
    lines = say(client, "P1", "积分商城").splitlines()
    assert lines[0] == "🎁 积分商城 · 您的积分：300"
    assert lines[1].startswith("✅ MUG 马克杯 —— 100 积分（剩 5 件）")
    assert lines[2] == "🔒 TV 电视 —— 5,000 积分（还差 4,700 积分）"
    assert lines[3] == "⛔ PEN 钢笔 —— 50 积分（已兑完）" and "旧款" not in "\n".join(lines)


def test_redeem_then_approve_by_an_admin_on_wechat(client: httpx.Client, engine: Engine, ids: dict[str, int]) -> None:
    earn(engine, ids["P1"], 300)
    bind(client, engine, "P1")
    bind(client, engine, "BOSS")
    reply = say(client, "P1", "兑换 mug")
    assert reply.startswith("✅ 已提交兑换申请 #1：马克杯（100 积分）") and "当前余额 200" in reply
    assert balance(engine, ids["P1"]) == 200 and stock(engine, "MUG") == 4
    admin_key = f"redemption:1:admin:{ids['BOSS']}"
    assert list(outbox(engine, "redemption:")) == [admin_key]
    admin_row = pushed(engine, admin_key)
    assert_to_wechat(admin_row, "BOSS")
    assert "New redemption #1: 经销商1 (P1) asks for Mug" in admin_row.payload["text"]
    assert "#1 经销商1 (P1) Mug, 100 points" in say(client, "BOSS", "积分商城")  # the admin's queue

    assert "仅限渠道经理" in say(client, "P1", "批准 1")  # a dealer cannot approve their own request
    assert say(client, "BOSS", "批准 1").startswith("Approved redemption #1: Mug for 经销商1")
    told = pushed(engine, "redemption:1:decided")
    assert_to_wechat(told, "P1")
    assert told.payload["text"].startswith("🎉 您的兑换申请 #1 已通过：马克杯")
    assert "already decided (approved)" in say(client, "BOSS", "批准 1")
    assert "already decided" in say(client, "BOSS", "驳回 1 太晚了")  # no refund after an approval
    assert balance(engine, ids["P1"]) == 200 and stock(engine, "MUG") == 4
    assert "-100  积分兑换" in say(client, "P1", "我的")


def test_redeem_then_reject_with_a_reason_refunds(client: httpx.Client, engine: Engine, ids: dict[str, int]) -> None:
    earn(engine, ids["P1"], 150)
    bind(client, engine, "P1")
    bind(client, engine, "BOSS")
    assert "#1" in say(client, "P1", "兑换 MUG")
    assert balance(engine, ids["P1"]) == 50 and stock(engine, "MUG") == 4
    reply = say(client, "BOSS", "驳回 1 本月库存盘点中")
    assert reply.startswith("Declined redemption #1: Mug for 经销商1; 100 points and the stock are back")
    assert balance(engine, ids["P1"]) == 150 and stock(engine, "MUG") == 5
    assert entries(engine, ids["P1"]) == [("earned", 150), ("spent", -100), ("refunded", 100)]
    told = pushed(engine, "redemption:1:decided")  # the partner's notice
    assert_to_wechat(told, "P1")
    assert told.kind == "redemption" and "未通过，原因：本月库存盘点中" in told.payload["text"]
    assert "100 积分已退回，当前余额 150" in told.payload["text"]
    assert "already decided (declined)" in say(client, "BOSS", "驳回 1 again")  # refunded once only
    assert "already decided" in say(client, "BOSS", "批准 1")
    assert balance(engine, ids["P1"]) == 150 and stock(engine, "MUG") == 5
    me = say(client, "P1", "我的")
    assert "+100  兑换退回" in me and "-100  积分兑换" in me
    with Session(engine) as s:
        r = s.get(Redemption, 1)
        assert r is not None and (r.status, r.note, r.decided_by) == ("rejected", "本月库存盘点中", ids["BOSS"])


def test_redeem_with_too_few_points_changes_nothing(client: httpx.Client, engine: Engine,
                                                    ids: dict[str, int]) -> None:
    earn(engine, ids["P1"], 99)
    bind(client, engine, "P1")
    assert say(client, "P1", "兑换 MUG") == "积分不足：需要 100 积分，您现有 99 积分，还差 1 积分。"
    assert say(client, "P1", "兑换 TV").startswith("积分不足：需要 5,000 积分")
    assert balance(engine, ids["P1"]) == 99 and stock(engine, "MUG") == 5 and stock(engine, "TV") == 1
    assert count(engine, Redemption) == 0 and outbox(engine) == {}
    assert entries(engine, ids["P1"]) == [("earned", 99)]


def test_redeem_out_of_stock(client: httpx.Client, engine: Engine, ids: dict[str, int]) -> None:
    earn(engine, ids["P1"], 10_000)
    earn(engine, ids["P2"], 10_000)
    bind(client, engine, "P1")
    bind(client, engine, "P2")
    assert say(client, "P1", "兑换 PEN") == "抱歉，商品 PEN 已经兑完了。"
    assert "#1" in say(client, "P1", "兑换TV")  # the last television, typed without a space
    assert say(client, "P2", "兑换 TV") == "抱歉，商品 TV 已经兑完了。"
    assert stock(engine, "TV") == 0 and stock(engine, "PEN") == 0
    assert balance(engine, ids["P1"]) == 5_000 and balance(engine, ids["P2"]) == 10_000
    assert count(engine, Redemption) == 1


# ---- trainings --------------------------------------------------------------------------------------------------


def test_join_then_reminders_at_the_right_times(client: httpx.Client, engine: Engine, ids: dict[str, int]) -> None:
    start = minute() + timedelta(hours=25)
    tid = training(engine, "渠道政策培训", start, "ABC123")
    bind(client, engine, "P1")
    assert "渠道政策培训" in say(client, "P1", "培训")
    assert say(client, "P1", f"报名 {tid}").startswith(f"✅ 报名成功：#{tid} 渠道政策培训")
    assert say(client, "P1", f"报名 {tid}").startswith("您已经报名了")

    def remind(now: datetime) -> int:
        with session_scope(engine) as s:
            return queue_reminders(s, now)

    assert remind(start - timedelta(hours=24, minutes=1)) == 0  # not yet
    assert remind(start - timedelta(hours=23, minutes=58)) == 1
    assert remind(start - timedelta(hours=23, minutes=50)) == 0  # once
    key24 = f"training:{tid}:remind24:partner:{ids['P1']}"
    assert list(outbox(engine, "training:")) == [key24]
    row = pushed(engine, key24)
    assert_to_wechat(row, "P1")
    local = start.astimezone(SH)
    assert row.payload["text"].startswith("⏰ 培训提醒：明天这个时候开始")
    assert f"🕒 {local:%Y-%m-%d %H:%M}" in row.payload["text"] and "签到可得 50 积分" in row.payload["text"]
    assert remind(start - timedelta(hours=2)) == 0
    assert remind(start - timedelta(minutes=59)) == 1
    assert remind(start + timedelta(minutes=5)) == 0  # started: nothing more
    key1 = f"training:{tid}:remind1:partner:{ids['P1']}"
    assert list(outbox(engine, "training:")) == [key24, key1]
    assert_to_wechat(pushed(engine, key1), "P1")
    assert pushed(engine, key1).payload["text"].startswith("⏰ 培训提醒：1 小时后开始")


def test_check_in_wrong_right_twice_and_too_late(client: httpx.Client, engine: Engine, ids: dict[str, int]) -> None:
    now = minute()
    running = training(engine, "渠道政策培训", now - timedelta(minutes=2), "ABC123")
    early = now - timedelta(minutes=40)
    over = training(engine, "早场培训", early, "LATE01")
    bind(client, engine, "P1")
    bind(client, engine, "P2")
    assert "报名成功" in say(client, "P1", f"报名 {running}")
    assert say(client, "P1", "签到 WRONG1") == "签到码不正确，请核对后重试（还可以尝试 4 次）。"
    assert balance(engine, ids["P1"]) == 0
    assert say(client, "P1", "签到 abc123") == "✅ 签到成功：渠道政策培训。获得 50 积分，当前余额 50。"
    assert say(client, "P1", "签到 ABC123") == "您已经签到过了：渠道政策培训。"
    assert balance(engine, ids["P1"]) == 50 and entries(engine, ids["P1"]) == [("earned", 50)]
    assert "+50  培训签到" in say(client, "P1", "我的")

    assert "不能再报名" in say(client, "P2", f"报名 {over}")
    closes = (early + timedelta(minutes=30)).astimezone(SH)
    assert say(client, "P2", "签到 LATE01") == f"签到已截止（{closes:%H:%M}）：早场培训 只能在开始后 30 分钟内签到。"
    assert balance(engine, ids["P2"]) == 0


# ---- feedback ---------------------------------------------------------------------------------------------------


def test_feedback_out_of_range_digit_then_a_rating_and_a_comment(client: httpx.Client, engine: Engine,
                                                                  ids: dict[str, int]) -> None:
    now = minute()
    start = now - timedelta(minutes=25)
    tid = training(engine, "渠道政策培训", start, "ABC123", minutes=20, points=10)
    bind(client, engine, "P1")
    assert "签到成功" in say(client, "P1", "签到 ABC123")  # a walk-in, 25 minutes after the start
    with session_scope(engine) as s:  # the survey goes out once check-in has closed too, in a few minutes
        assert queue_feedback_requests(s, start + timedelta(minutes=29)) == 0
        assert queue_feedback_requests(s, start + timedelta(minutes=31)) == 1
    key = f"feedback:training:{tid}:partner:{ids['P1']}"
    asked = pushed(engine, key)
    assert_to_wechat(asked, "P1")
    assert asked.payload["text"].startswith("📝 培训“渠道政策培训”已结束，请为它打个分")
    assert "回复 1 到 5 的数字" in asked.payload["text"]

    assert say(client, "P1", "9") == "请回复 1 到 5 之间的数字（5 = 非常满意，1 = 很不满意）。"
    assert say(client, "P1", "0") == "请回复 1 到 5 之间的数字（5 = 非常满意，1 = 很不满意）。"
    with Session(engine) as s:
        assert s.execute(select(FeedbackRequest.rating)).scalar_one() is None
    assert say(client, "P1", "4").startswith("谢谢您的评分（4 分）")
    assert say(client, "P1", "讲得很清楚，希望多讲案例") == "收到，谢谢您的宝贵意见！"
    assert "没听懂" in say(client, "P1", "5")  # nothing left to rate: just a number
    with Session(engine) as s:
        request = s.execute(select(FeedbackRequest)).scalar_one()
        assert (request.rating, request.comment) == (4, "讲得很清楚，希望多讲案例")
