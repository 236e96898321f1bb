"""Pushes to the Official Account and WeCom against a fake API on 127.0.0.1: the 48-hour window
and its 5-push quota, template messages outside it, error codes mapped for the delivery worker,
and one access token fetched once and shared through the database by several sender instances.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, select
from sqlmodel import Session
from starlette.applications import Starlette

import handlers.dispatch
from bot.channels.base import OutboxItem, SendResult
from bot.channels.wechat.official_account import wechat_routes
from bot.channels.wechat.push import WeChatPush, WeComPush
from bot.channels.wechat.wecom import wecom_routes
from bot.delivery.limiter import Ceilings
from bot.delivery.worker import DeliveryWorker
from models.db import session_scope
from models.tables import AccessToken, Outbox
from models.values import as_utc, utcnow
from tests.support.delivery import drain
from tests.support.fake_wechat import FakeWeixin, http_client, sample_xml, signed_query, weixin_api
from tests.support.wechat_push import OPENID, TEMPLATE, identity, pushes, run, settings


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeWeixin]:
    yield from weixin_api(monkeypatch)


def item(text: str = "📣 本周排行已更新", identity_id: int | None = None, chat_ref: str = OPENID,
         platform: str = "wechat", is_group: bool = False, **payload: Any) -> OutboxItem:
    return OutboxItem(id=1, platform=platform, chat_ref=chat_ref, is_group=is_group, payload={"text": text, **payload},
                      identity_id=identity_id, partner_id=None, attempts=0)


# ---- access tokens ------------------------------------------------------------------------------------------


def test_one_token_for_two_instances_sharing_the_database(db_url: str, engine: Engine, fake: FakeWeixin) -> None:
    iid = identity(engine)

    async def both() -> list[SendResult]:
        first, second = WeChatPush(settings(db_url, fake), engine), WeChatPush(settings(db_url, fake), engine)
        try:  # at the same time, with no token stored yet: one fetches, the other waits for it
            together = await asyncio.gather(first.send(item(identity_id=iid)), second.send(item(identity_id=iid)))
            return [*together, await second.send(item(identity_id=iid))]
        finally:
            await first.close()
            await second.close()

    assert [r.outcome for r in asyncio.run(both())] == ["sent"] * 3
    assert [r.outcome for r in run(WeChatPush(settings(db_url, fake), engine), item(identity_id=iid))] == ["sent"]
    assert fake.token_fetches == 1
    assert {c.token for c in fake.calls} == {"TOKEN-1"}
    with Session(engine) as s:
        row = s.execute(select(AccessToken)).scalar_one()
    assert row.app == "wechat:wx0123456789abcdef" and row.token == "TOKEN-1"
    assert timedelta(seconds=7000) < as_utc(row.expires_at) - utcnow() <= timedelta(seconds=7200)


def test_rejected_token_is_refreshed_once_and_the_call_retried(db_url: str, engine: Engine,
                                                                fake: FakeWeixin) -> None:
    iid = identity(engine)
    assert run(WeChatPush(settings(db_url, fake), engine), item(identity_id=iid))[0].outcome == "sent"
    fake.revoke_tokens()  # the token was replaced elsewhere, or expired early: 42001
    sender = WeChatPush(settings(db_url, fake), engine)
    assert run(sender, item(identity_id=iid))[0].outcome == "sent"
    assert fake.token_fetches == 2 and [c.token for c in fake.calls] == ["TOKEN-1", "TOKEN-1", "TOKEN-2"]
    # a platform that keeps rejecting: one refresh, one retry, then the worker hears about it
    fake.fail_next("message/custom/send", 40001, "invalid credential")
    fake.fail_next("message/custom/send", 40001, "invalid credential")
    result = run(WeChatPush(settings(db_url, fake), engine), item(identity_id=iid))[0]
    assert result.outcome == "failed" and "40001" in (result.error or "")
    assert fake.token_fetches == 3 and len(fake.calls) == 5


def test_an_expiring_token_is_refreshed_a_minute_early(db_url: str, engine: Engine, fake: FakeWeixin) -> None:
    iid = identity(engine)
    with session_scope(engine) as s:
        s.add(AccessToken(app="wechat:wx0123456789abcdef", token="OLD", expires_at=utcnow() + timedelta(seconds=50),
                          fetched_at=utcnow() - timedelta(seconds=7150)))
    assert run(WeChatPush(settings(db_url, fake), engine), item(identity_id=iid))[0].outcome == "sent"
    assert fake.token_fetches == 1 and fake.calls[0].token == "TOKEN-1"


# ---- the Official Account's 48-hour window ------------------------------------------------------------------


def test_five_customer_service_pushes_per_window_then_closed(db_url: str, engine: Engine, fake: FakeWeixin) -> None:
    iid = identity(engine, seen_hours_ago=47)
    results = run(WeChatPush(settings(db_url, fake), engine), *(item(f"消息 {n}", iid) for n in range(6)))
    assert [r.outcome for r in results] == ["sent"] * 5 + ["undeliverable"]
    assert results[-1].error == "wechat_window_closed"
    assert pushes(engine, iid) == 5
    sent = fake.sent("message/custom/send")
    assert len(sent) == 5 and sent[0].body == {"touser": OPENID, "msgtype": "text", "text": {"content": "消息 0"}}


def test_outside_the_window_undeliverable_without_template(db_url: str, engine: Engine, fake: FakeWeixin) -> None:
    iid = identity(engine, seen_hours_ago=49)
    never = identity(engine, seen_hours_ago=None, user_ref="oNeverWroteAnything000000000")
    results = run(WeChatPush(settings(db_url, fake), engine), item(identity_id=iid),
                  item(identity_id=never, chat_ref="oNeverWroteAnything000000000"))
    assert [(r.outcome, r.error) for r in results] == [("undeliverable", "wechat_window_closed")] * 2
    assert fake.calls == [] and fake.token_fetches == 0


def test_outside_the_window_the_template_goes(db_url: str, engine: Engine, fake: FakeWeixin) -> None:
    iid = identity(engine, seen_hours_ago=49)
    text = "🏆 本月销售冠军：经销商1\n您：第 4 名"
    result = run(WeChatPush(settings(db_url, fake, wechat_template_id=TEMPLATE), engine), item(text, iid))[0]
    assert result.outcome == "sent"
    (call,) = fake.sent("message/template/send")
    assert call.body["touser"] == OPENID and call.body["template_id"] == TEMPLATE
    assert call.body["data"]["keyword1"]["value"] == text and call.body["data"]["keyword2"]["value"]
    assert pushes(engine, iid) == 0  # templates do not use the customer-service quota


def test_window_closed_by_wechat_45015(db_url: str, engine: Engine, fake: FakeWeixin) -> None:
    iid = identity(engine)
    fake.fail_next("message/custom/send", 45015, "response out of time limit or subscription is canceled")
    result = run(WeChatPush(settings(db_url, fake), engine), item(identity_id=iid))[0]
    assert (result.outcome, result.error) == ("undeliverable", "wechat_window_closed")
    # with a template: closed on our side too, retried, and the retry goes out as a template
    fake.fail_next("message/custom/send", 45015, "response out of time limit or subscription is canceled")
    results = run(WeChatPush(settings(db_url, fake, wechat_template_id=TEMPLATE), engine),
                  item(identity_id=iid), item(identity_id=iid))
    assert [r.outcome for r in results] == ["retry", "sent"]
    assert len(fake.sent("message/template/send")) == 1


def test_unfollowed_and_unknown_accounts(db_url: str, engine: Engine, fake: FakeWeixin) -> None:
    gone = identity(engine, active=False)
    sender = WeChatPush(settings(db_url, fake), engine)
    other = "oSomeoneWhoJustWrote000000000"
    fake.fail_next("message/custom/send", 43004, "require subscribe")
    results = run(sender, item(identity_id=gone), item(chat_ref=other, reply_to="msg:1"), item(chat_ref=other))
    assert [(r.outcome, r.error) for r in results] == [
        ("blocked", "wechat_unsubscribed"),  # no call at all
        ("blocked", "wechat_unsubscribed"),  # 43004 from WeChat: a late reply to someone who left meanwhile
        ("undeliverable", "wechat_window_closed"),  # not a reply, and we know nothing of their window
    ]
    assert len(fake.calls) == 1


def test_busy_rate_limits_and_long_texts(db_url: str, engine: Engine, fake: FakeWeixin) -> None:
    iid = identity(engine)
    fake.fail_next("message/custom/send", -1, "system error")
    fake.fail_next("message/custom/send", 45009, "reach max api daily quota limit")
    fake.fail_next("message/custom/send", 40003, "invalid openid")
    fake.fail_next("message/custom/send", 44004, "empty content")
    long_text = "\n".join(["经销商排行榜更新"] * 300)
    results = run(WeChatPush(settings(db_url, fake), engine), *(item(identity_id=iid) for _ in range(4)),
                  item(long_text, iid), item("  ", iid))
    assert [r.outcome for r in results] == ["retry", "retry", "blocked", "failed", "sent", "failed"]
    assert results[1].retry_after and results[1].retry_after >= 60
    content = fake.sent("message/custom/send")[-1].body["text"]["content"]
    assert len(content.encode("utf-8")) <= 2048 and content.endswith("…")


def test_network_failure_is_a_retry(db_url: str, engine: Engine, fake: FakeWeixin) -> None:
    iid = identity(engine)
    result = run(WeChatPush(settings(db_url, fake, wechat_api_url="http://127.0.0.1:9/cgi-bin/"), engine,
                            timeout=2.0), item(identity_id=iid))[0]
    assert result.outcome == "retry" and "network" in (result.error or "")


# ---- WeCom ----------------------------------------------------------------------------------------------------------


def wecom_item(chat_ref: str = "zhangsan", **kw: Any) -> OutboxItem:
    return item(platform="wecom", chat_ref=chat_ref, **kw)


def test_wecom_member_and_group_messages(db_url: str, engine: Engine, fake: FakeWeixin) -> None:
    results = run(WeComPush(settings(db_url, fake), engine), wecom_item(), wecom_item("wrk-team-east", is_group=True))
    assert [r.outcome for r in results] == ["sent", "sent"]
    member, group = fake.sent("message/send"), fake.sent("appchat/send")
    assert member[0].body == {"touser": "zhangsan", "msgtype": "text", "agentid": 1000002,
                              "text": {"content": "📣 本周排行已更新"}}
    assert group[0].body == {"chatid": "wrk-team-east", "msgtype": "text", "text": {"content": "📣 本周排行已更新"}}


def test_wecom_token_shared_and_refreshed(db_url: str, engine: Engine, fake: FakeWeixin) -> None:
    fake.expired_code = 40014
    assert run(WeComPush(settings(db_url, fake), engine), wecom_item())[0].outcome == "sent"
    assert run(WeComPush(settings(db_url, fake), engine), wecom_item())[0].outcome == "sent"
    assert fake.token_fetches == 1
    fake.revoke_tokens()
    assert run(WeComPush(settings(db_url, fake), engine), wecom_item())[0].outcome == "sent"
    assert fake.token_fetches == 2
    with Session(engine) as s:
        assert s.execute(select(AccessToken.app)).scalar_one() == "wecom:ww0123456789:1000002"


def test_wecom_outcomes(db_url: str, engine: Engine, fake: FakeWeixin) -> None:
    fake.fail_next("message/send", 0, "ok", invaliduser="zhangsan")
    fake.fail_next("message/send", 81013, "user & party & tag all invalid")
    fake.fail_next("message/send", -1, "system busy")
    fake.fail_next("message/send", 45033, "api concurrent out of limit")
    fake.fail_next("message/send", 301002, "not allow operate another agent")
    results = run(WeComPush(settings(db_url, fake), engine), *(wecom_item() for _ in range(5)))
    assert [(r.outcome, r.error and r.error.split(":")[0]) for r in results] == [
        ("blocked", "wecom_invalid_user"), ("blocked", "wecom_invalid_user"), ("retry", "wecom_-1"),
        ("retry", "wecom_45033"), ("failed", "wecom_301002")]


def test_wecom_lists_members_lowercased_and_unlicensed_ones(db_url: str, engine: Engine, fake: FakeWeixin) -> None:
    fake.fail_next("message/send", 0, "ok", invaliduser="zhangsan")  # WeCom lowercases the ids it lists
    fake.fail_next("message/send", 0, "ok", unlicenseduser="lisi")
    results = run(WeComPush(settings(db_url, fake), engine), wecom_item("ZhangSan"), wecom_item("LiSi"))
    assert [(r.outcome, r.error) for r in results] == [("blocked", "wecom_invalid_user"),
                                                       ("undeliverable", "wecom_unlicensed_user")]


# ---- a reply too slow for the passive answer reaches the user through the outbox ---------------------------


def test_late_reply_goes_out_as_a_customer_service_message(db_url: str, engine: Engine, fake: FakeWeixin,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    iid = identity(engine, seen_hours_ago=100)  # a window long closed: the user's message reopens it
    release, real = threading.Event(), handlers.dispatch.dispatch
    monkeypatch.setattr(handlers.dispatch, "dispatch", lambda *a, **k: (release.wait(5), real(*a, **k))[1])
    config = settings(db_url, fake, wechat_token="tok")
    with http_client(Starlette(routes=wechat_routes(config, engine, deadline=0.2))) as client:
        xml = sample_xml("text", Content="我的", MsgId="24581398459177777")
        assert client.post("/wechat/callback", params=signed_query("tok"), content=xml).text == "success"
        release.set()
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            with Session(engine) as s:
                if s.execute(select(Outbox)).first():
                    break
            time.sleep(0.02)

    drain(DeliveryWorker(engine, {"wechat": WeChatPush(config, engine)}, {"wechat": Ceilings(100, 0, 0)}))
    with Session(engine) as s:
        row = s.execute(select(Outbox)).scalar_one()
    assert (row.key, row.status, row.identity_id) == ("reply:wechat:24581398459177777", "sent", iid)
    (call,) = fake.sent("message/custom/send")
    assert call.body["touser"] == OPENID and "经销商1" in call.body["text"]["content"]
    assert pushes(engine, iid) == 1


def test_a_mistyped_aes_key_is_reported_at_start(db_url: str, engine: Engine, fake: FakeWeixin) -> None:
    with pytest.raises(ValueError, match="MIANZI_WECHAT_AES_KEY"):
        wechat_routes(settings(db_url, fake, wechat_token="tok", wechat_aes_key="short"), engine)
    with pytest.raises(ValueError, match="MIANZI_WECOM_AES_KEY"):
        wecom_routes(settings(db_url, fake, wecom_token="tok", wecom_aes_key="short"), engine)
