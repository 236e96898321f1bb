"""The Official Account callback end to end over HTTP: the sample XML signed (and in safe mode
encrypted with wechatpy's own crypto) as WeChat does, posted to a Starlette app built from
`wechat_routes`, with the replies read back from the XML answer.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, func, insert, select
from sqlmodel import Session
from starlette.applications import Starlette
from wechatpy.crypto import WeChatCrypto

import handlers.dispatch
from bot.channels.wechat.callback_xml import signature
from bot.channels.wechat.official_account import wechat_routes
from bot.core.runner import CoreProcess
from bot.web.app import create_app
from messages.render import t
from models.tables import ChatIdentity, InboundSeen, Outbox
from models.values import utcnow
from tests.support.fake_wechat import build_program, fresh_stamp, http_client, reply_fields, sample_xml, signed_query
from tests.support.live_app import live_app
from tests.support.official_account import APP_ID, GH, OPENID, TOKEN, make_app, post, say, settings, text_xml
from tests.support.spies import spy_on_dispatch

AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"


@pytest.fixture
def client(db_url: str, engine: Engine) -> Iterator[httpx.Client]:
    with http_client(make_app(db_url, engine)) as c:
        yield c


@pytest.fixture
def invites(engine: Engine) -> dict[str, str]:
    return build_program(engine)


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[str | None]:
    """Every text the core was asked to run."""
    return spy_on_dispatch(monkeypatch, lambda incoming: incoming.text)


def count(engine: Engine, table: type) -> int:
    with Session(engine) as s:
        return s.execute(select(func.count()).select_from(table)).scalar_one()


# ---- URL check and the conversation -------------------------------------------------------------------


def test_url_check_echoes_only_when_signed(client: httpx.Client) -> None:
    ok = client.get("/wechat/callback", params=signed_query(TOKEN, echostr="8264921375430188271"))
    assert ok.status_code == 200 and ok.text == "8264921375430188271"
    forged = client.get("/wechat/callback", params=signed_query("not-our-token", echostr="1"))
    assert forged.status_code == 403 and "1" not in forged.text


def test_bind_rank_team_me_in_chinese(client: httpx.Client, invites: dict[str, str], engine: Engine) -> None:
    assert "绑定 邀请码" in say(client, "排行")
    assert "绑定成功" in say(client, f"绑定 {invites['CAP']}") and "王队长" in say(client, "帮助")
    rank = say(client, "排行")
    assert "🥇 经销商1" in rank and "本月销售冠军" in rank and "您：第 6 名" in rank
    team = say(client, "团队")
    assert "经销商1" in team and "经销商3" in team and "经销商4" not in team  # captain sees own members
    me = say(client, "我的")
    assert "王队长" in me and "积分" in me
    with Session(engine) as s:
        identity = s.execute(select(ChatIdentity)).scalar_one()
        assert (identity.platform, identity.user_ref, identity.active) == ("wechat", OPENID, True)
        assert identity.last_seen_at is not None and identity.window_pushes == 0


def test_slash_commands_and_full_width_work_too(client: httpx.Client, invites: dict[str, str]) -> None:
    assert "绑定成功" in say(client, f"/bind {invites['P1']}")
    assert "您：第 1 名" in say(client, "／ＲＡＮＫ")


# ---- events ----------------------------------------------------------------------------------------------


def test_follow_from_an_invite_qr_code_binds_at_once(client: httpx.Client, invites: dict[str, str],
                                                     engine: Engine) -> None:
    response = post(client, sample_xml("subscribe_qrscene", EventKey=f"qrscene_{invites['P2']}"))
    assert "绑定成功" in reply_fields(response.text)["Content"] and "经销商2" in response.text
    assert count(engine, ChatIdentity) == 1


def test_plain_follow_greets_and_explains_binding(client: httpx.Client, invites: dict[str, str],
                                                  engine: Engine) -> None:
    content = reply_fields(post(client, sample_xml("subscribe_plain")).text)["Content"]
    assert "欢迎" in content and "绑定 邀请码" in content
    assert count(engine, ChatIdentity) == 0


def test_scan_by_a_follower_binds(client: httpx.Client, invites: dict[str, str], engine: Engine) -> None:
    content = reply_fields(post(client, sample_xml("scan_bound_user", EventKey=invites["P4"])).text)["Content"]
    assert "绑定成功" in content and "经销商4" in content
    bad = reply_fields(post(client, sample_xml("scan_bound_user", CreateTime="1795392099")).text)["Content"]
    assert "邀请码不正确" in bad  # the sample's made-up code


def test_unfollow_marks_inactive_and_refollow_restores(client: httpx.Client, invites: dict[str, str],
                                                       engine: Engine) -> None:
    say(client, f"绑定 {invites['P1']}")
    response = post(client, sample_xml("unsubscribe"))
    assert response.status_code == 200 and response.text == "success"
    with Session(engine) as s:
        assert s.execute(select(ChatIdentity.active)).scalar_one() is False
    assert "绑定 邀请码" in say(client, "排行")  # no longer answered as the partner
    again = reply_fields(post(client, sample_xml("subscribe_plain", CreateTime="1795392100")).text)["Content"]
    assert "经销商1" in again  # the same WeChat account, followed again: known again
    with Session(engine) as s:
        assert s.execute(select(ChatIdentity.active)).scalar_one() is True


def test_menu_click_runs_the_command(client: httpx.Client, invites: dict[str, str]) -> None:
    say(client, f"绑定 {invites['P1']}")
    assert "您：第 1 名" in reply_fields(post(client, sample_xml("menu_click")).text)["Content"]
    me = reply_fields(post(client, sample_xml("menu_click", EventKey="me", CreateTime="1795392200")).text)
    assert "经销商1" in me["Content"] and "积分" in me["Content"]
    other = reply_fields(post(client, sample_xml("menu_click", EventKey="V1001_TODAY", CreateTime="1795392300")).text)
    assert "排行" in other["Content"]  # an unknown key shows the help


def test_other_events_are_acknowledged_and_ignored(client: httpx.Client, calls: list) -> None:
    xml = sample_xml("menu_click", Event="VIEW", EventKey="https://example.com/")
    assert post(client, xml).text == "success"
    assert calls == []


def test_photo_gets_the_short_help_and_voice_recognition_is_text(client: httpx.Client, invites: dict[str, str]) -> None:
    assert "只能读懂文字" in reply_fields(post(client, sample_xml("image")).text)["Content"]
    say(client, f"绑定 {invites['P1']}")
    voice = sample_xml("image", MsgType="voice", MsgId="24581398459112999", Recognition="排行。")
    assert "您：第 1 名" in reply_fields(post(client, voice).text)["Content"]  # recognition adds a full stop
    voice = sample_xml("image", MsgType="voice", MsgId="24581398459113000")
    assert "只能读懂文字" in reply_fields(post(client, voice).text)["Content"]  # recognition switched off


# ---- replies are safe XML and short enough ----------------------------------------------------------------


def test_user_text_cannot_break_out_of_cdata(client: httpx.Client, invites: dict[str, str]) -> None:
    say(client, f"绑定 {invites['P1']}")
    evil = "]]></Content><MsgType><![CDATA[news]]></MsgType><Content><![CDATA[x"
    response = post(client, text_xml(f"/rank {evil}"))
    fields = reply_fields(response.text)
    assert fields["MsgType"] == "text" and list(fields) == ["ToUserName", "FromUserName", "CreateTime",
                                                            "MsgType", "Content"]
    assert evil in fields["Content"]  # shown to the user exactly as typed, as text


def test_long_replies_fit_2048_bytes(client: httpx.Client, monkeypatch: pytest.MonkeyPatch) -> None:
    import bot.core.conversation

    monkeypatch.setattr(bot.core.conversation, "render", lambda *a, **k: "\n".join(["排行榜第一名经销商"] * 400))
    content = say(client, "排行")
    assert len(content.encode("utf-8")) <= 2048 and content.endswith("…")


# ---- retries: one execution ---------------------------------------------------------------------------------


def test_same_msgid_three_times_runs_once(client: httpx.Client, invites: dict[str, str], engine: Engine,
                                          calls: list) -> None:
    say(client, f"绑定 {invites['P1']}")
    xml = text_xml("/lang en", msg_id=24581398459112345)
    answers = [post(client, xml) for _ in range(3)]
    assert calls.count("/lang en") == 1
    assert [a.status_code for a in answers] == [200, 200, 200]
    first = reply_fields(answers[0].text)["Content"]
    assert first == "OK, I will answer in English from now on."
    for retry in answers[1:]:  # WeChat retries only when it missed our answer: it gets the same one
        assert retry.text == "success" or reply_fields(retry.text)["Content"] == first
    with Session(engine) as s:
        assert s.execute(select(func.count()).select_from(InboundSeen)
                         .where(InboundSeen.key == "msg:24581398459112345")).scalar_one() == 1


def test_a_retry_reaching_another_server_process_is_answered_success_and_not_run(
        client: httpx.Client, invites: dict[str, str], db_url: str, engine: Engine, calls: list) -> None:
    say(client, f"绑定 {invites['P1']}")
    xml = text_xml("/lang en", msg_id=24581398459112349)
    assert reply_fields(post(client, xml).text)["Content"] == "OK, I will answer in English from now on."
    with http_client(make_app(db_url, engine)) as other:  # a second process: its memory has never seen it
        assert post(other, xml).text == "success"  # the database's claim says it was handled
        assert reply_fields(post(other, text_xml("/lang zh", msg_id=24581398459112348)).text)["Content"]
    assert calls.count("/lang en") == 1 and calls.count("/lang zh") == 1


def test_concurrent_retries_of_a_slow_message_run_once(db_url: str, engine: Engine, invites: dict[str, str],
                                                       calls: list, monkeypatch: pytest.MonkeyPatch) -> None:
    real = handlers.dispatch.dispatch

    def slow(*args: Any, **kwargs: Any) -> Any:
        time.sleep(0.3)
        return real(*args, **kwargs)

    monkeypatch.setattr(handlers.dispatch, "dispatch", slow)
    app = make_app(db_url, engine)
    xml = text_xml("帮助", msg_id=24581398459112346)

    async def three() -> list[httpx.Response]:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://wechat") as c:
            return list(await asyncio.gather(*(post(c, xml) for _ in range(3))))  # type: ignore[misc]

    answers = asyncio.run(three())
    assert calls.count("帮助") == 1
    contents = {reply_fields(a.text)["Content"] for a in answers if a.text != "success"}
    assert len(contents) == 1 and "绑定 邀请码" in contents.pop()


def test_too_slow_answers_success_and_queues_the_reply(db_url: str, engine: Engine, invites: dict[str, str],
                                                       calls: list, monkeypatch: pytest.MonkeyPatch) -> None:
    release = threading.Event()
    real = handlers.dispatch.dispatch

    def stuck(*args: Any, **kwargs: Any) -> Any:
        release.wait(5)
        return real(*args, **kwargs)

    monkeypatch.setattr(handlers.dispatch, "dispatch", stuck)
    with http_client(make_app(db_url, engine, deadline=0.2)) as c:
        xml = text_xml("帮助", msg_id=24581398459112347)
        assert post(c, xml).text == "success"
        release.set()
        deadline = time.monotonic() + 5
        while count(engine, Outbox) == 0 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert post(c, xml).text == "success"  # WeChat's retry: not run again, not answered twice
    with Session(engine) as s:
        row = s.execute(select(Outbox)).scalar_one()
    assert row.key == "reply:wechat:24581398459112347" and row.kind == "reply" and row.status == "pending"
    assert row.platform == "wechat" and row.chat_ref == OPENID and "绑定 邀请码" in row.payload["text"]
    assert calls.count("帮助") == 1


# ---- safe mode ------------------------------------------------------------------------------------------------


def encrypted(xml: str, app_id: str = APP_ID, timestamp: str | None = None,
              nonce: str | None = None) -> tuple[str, dict[str, str]]:
    """The body and query WeChat sends in safe mode (now, a new nonce), made with wechatpy's own crypto."""
    timestamp, nonce = fresh_stamp(timestamp, nonce)
    body = WeChatCrypto(TOKEN, AES_KEY, app_id).encrypt_message(xml, nonce, timestamp)
    fields = reply_fields(body)
    query = {"signature": signature(TOKEN, timestamp, nonce), "timestamp": timestamp, "nonce": nonce,
             "openid": OPENID, "encrypt_type": "aes", "msg_signature": fields["MsgSignature"]}
    return f"<xml><ToUserName><![CDATA[{GH}]]></ToUserName><Encrypt><![CDATA[{fields['Encrypt']}]]></Encrypt></xml>", query


def decrypted_reply(response: httpx.Response) -> dict[str, str]:
    outer = reply_fields(response.text)
    plain = WeChatCrypto(TOKEN, AES_KEY, APP_ID).decrypt_message(response.text, outer["MsgSignature"],
                                                                 outer["TimeStamp"], outer["Nonce"])
    return reply_fields(plain)


@pytest.fixture
def safe_client(db_url: str, engine: Engine) -> Iterator[httpx.Client]:
    with http_client(make_app(db_url, engine, wechat_aes_key=AES_KEY)) as c:
        yield c


def test_safe_mode_round_trip(safe_client: httpx.Client, invites: dict[str, str], engine: Engine) -> None:
    body, query = encrypted(text_xml(f"绑定 {invites['P1']}"))
    response = safe_client.post("/wechat/callback", params=query, content=body)
    assert response.status_code == 200
    reply = decrypted_reply(response)
    assert reply["ToUserName"] == OPENID and "绑定成功" in reply["Content"]
    body, query = encrypted(text_xml("排行"))
    assert "您：第 1 名" in decrypted_reply(safe_client.post("/wechat/callback", params=query, content=body))["Content"]
    assert count(engine, ChatIdentity) == 1


# ---- bad input: 4xx, nothing stored, nothing run, a log line ----------------------------------------------


def refused(engine: Engine, calls: list, caplog: pytest.LogCaptureFixture, status: int, response: httpx.Response,
            reason: str) -> None:
    assert response.status_code == status, response.text
    assert calls == []
    assert count(engine, InboundSeen) == 0 and count(engine, ChatIdentity) == 0 and count(engine, Outbox) == 0
    assert any(reason in r.getMessage() for r in caplog.records if r.name.startswith("mianzi")), caplog.text


BOMB = ('<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">'
        '<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;"><!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;">]>'
        '<xml><ToUserName>gh</ToUserName><FromUserName>x</FromUserName><CreateTime>1</CreateTime>'
        '<MsgType>text</MsgType><Content>&d;</Content><MsgId>1</MsgId></xml>')


@pytest.mark.parametrize(("case", "status", "reason"), [
    ("wrong_signature", 403, "wrong or missing signature"),
    ("no_signature", 403, "wrong or missing signature"),
    ("not_xml", 400, "not XML"),
    ("not_a_callback", 400, "without FromUserName"),
    ("entity_bomb", 400, "entities are disabled"),
    ("huge_declared", 413, "declared"),
    ("huge_chunked", 413, "body over"),
])
def test_bad_plaintext_requests(client: httpx.Client, engine: Engine, calls: list, caplog: pytest.LogCaptureFixture,
                                case: str, status: int, reason: str) -> None:
    caplog.set_level(logging.INFO)
    query = signed_query(TOKEN)
    url = "/wechat/callback"
    if case == "wrong_signature":
        response = client.post(url, params={**query, "signature": "0" * 40}, content=text_xml("排行"))
    elif case == "no_signature":
        response = client.post(url, content=text_xml("排行"))
    elif case == "not_xml":
        response = client.post(url, params=query, content=b'{"MsgType": "text"}')
    elif case == "not_a_callback":
        response = client.post(url, params=query, content=b"<xml><Content>hi</Content></xml>")
    elif case == "entity_bomb":
        response = client.post(url, params=query, content=BOMB)
    elif case == "huge_declared":
        response = client.post(url, params=query, content=b"<xml>" + b"a" * (8 << 20) + b"</xml>")
    else:
        def chunks() -> Iterator[bytes]:
            for _ in range(8):
                yield b"a" * (1 << 20)

        response = client.post(url, params=query, content=chunks())
    refused(engine, calls, caplog, status, response, reason)


@pytest.mark.parametrize(("case", "status", "reason"), [
    ("plaintext", 400, "not encrypted"),
    ("wrong_msg_signature", 403, "msg_signature"),
    ("other_app", 403, "another app id"),
    ("garbage", 400, "cannot decrypt"),
])
def test_bad_safe_mode_requests(safe_client: httpx.Client, engine: Engine, calls: list,
                                caplog: pytest.LogCaptureFixture, case: str, status: int, reason: str) -> None:
    caplog.set_level(logging.INFO)
    body, query = encrypted(text_xml("排行"), app_id="wxFFFFFFFFFFFFFFFF" if case == "other_app" else APP_ID)
    if case == "plaintext":
        body, query = text_xml("排行"), signed_query(TOKEN)
    elif case == "wrong_msg_signature":
        query["msg_signature"] = signature("x", "y", "z")
    elif case == "garbage":
        nonsense = "bm90IGVuY3J5cHRlZA=="
        body = f"<xml><Encrypt><![CDATA[{nonsense}]]></Encrypt></xml>"
        query["msg_signature"] = signature(TOKEN, query["timestamp"], query["nonce"], nonsense)
    refused(engine, calls, caplog, status, safe_client.post("/wechat/callback", params=query, content=body), reason)


# ---- freshness and replays: a captured request is worth nothing -----------------------------------------


A_YEAR = 365 * 86400
STALE = ["1", "2020", "abc", "", "17953920000000", "-300"]


@pytest.mark.parametrize("when", [*STALE, "a year ahead", "301 s ago", "two days ago"])
def test_timestamps_outside_the_window_are_refused(client: httpx.Client, safe_client: httpx.Client, engine: Engine,
                                                   invites: dict[str, str], calls: list,
                                                   caplog: pytest.LogCaptureFixture, when: str) -> None:
    caplog.set_level(logging.INFO)
    now = int(time.time())
    timestamp = {"a year ahead": str(now + A_YEAR), "301 s ago": str(now - 301),
                 "two days ago": str(now - 2 * 86400)}.get(when, when)
    xml = text_xml(f"绑定 {invites['P1']}")
    assert post(client, xml, timestamp=timestamp).status_code == 403
    body, query = encrypted(xml, timestamp=timestamp)
    assert safe_client.post("/wechat/callback", params=query, content=body).status_code == 403
    url_check = client.get("/wechat/callback", params=signed_query(TOKEN, timestamp=timestamp, echostr="4242"))
    assert url_check.status_code == 403 and "4242" not in url_check.text
    refused(engine, calls, caplog, 403, post(client, xml, timestamp=timestamp), "timestamp")


def test_timestamps_within_the_window_are_accepted_either_way(db_url: str, engine: Engine,
                                                              invites: dict[str, str]) -> None:
    now = int(time.time())
    with http_client(make_app(db_url, engine, wechat_max_age_seconds=3600)) as c:
        assert "绑定成功" in reply_fields(post(c, text_xml(f"绑定 {invites['P1']}"),
                                               timestamp=str(now - 3000)).text)["Content"]
        assert "您：第 1 名" in reply_fields(post(c, text_xml("排行"), timestamp=str(now + 3000)).text)["Content"]
        assert post(c, text_xml("排行"), timestamp=str(now - 3700)).status_code == 403
    from bot.core.dedupe import keys_for

    assert keys_for(engine).keep >= timedelta(seconds=2 * 3600)  # claims outlive any replay still accepted


def test_a_captured_query_cannot_carry_another_message(client: httpx.Client, engine: Engine, invites: dict[str, str],
                                                       calls: list, caplog: pytest.LogCaptureFixture) -> None:
    """Plaintext mode signs only (token, timestamp, nonce): whoever saw one request has a valid query."""
    caplog.set_level(logging.INFO)
    captured = signed_query(TOKEN)
    assert post(client, text_xml("帮助"), **captured).status_code == 200
    forged = post(client, text_xml(f"绑定 {invites['P1']}", openid="oAttacker"), **captured)
    assert forged.status_code == 403 and "绑定" not in forged.text
    assert calls == ["帮助"] and count(engine, ChatIdentity) == 0
    assert "nonce already used" in caplog.text
    retry = post(client, text_xml("帮助", msg_id=24581398459112360), **signed_query(TOKEN))  # other nonces still work
    assert retry.status_code == 200 and calls == ["帮助", "帮助"]


def test_a_forged_message_is_refused_by_another_process_too(client: httpx.Client, db_url: str, engine: Engine,
                                                            invites: dict[str, str], calls: list) -> None:
    captured = signed_query(TOKEN)
    assert post(client, text_xml("帮助"), **captured).status_code == 200
    with http_client(make_app(db_url, engine)) as other:  # the nonces are in the database, not in memory
        assert post(other, text_xml(f"绑定 {invites['P1']}"), **captured).status_code == 403
    assert calls == ["帮助"] and count(engine, ChatIdentity) == 0


def test_an_ignored_events_query_cannot_carry_a_message(client: httpx.Client, engine: Engine,
                                                        invites: dict[str, str], calls: list) -> None:
    captured = signed_query(TOKEN)
    view = sample_xml("menu_click", Event="VIEW", EventKey="https://example.com/")
    assert post(client, view, **captured).text == "success"
    assert post(client, view, **captured).text == "success"  # WeChat's own retry of it: the same answer
    assert post(client, text_xml(f"绑定 {invites['P1']}"), **captured).status_code == 403
    assert calls == [] and count(engine, ChatIdentity) == 0


def test_a_replay_within_the_window_runs_nothing_and_a_late_one_is_refused(
        client: httpx.Client, engine: Engine, invites: dict[str, str], calls: list) -> None:
    captured, xml = signed_query(TOKEN), text_xml(f"绑定 {invites['P1']}")
    assert "绑定成功" in reply_fields(post(client, xml, **captured).text)["Content"]
    assert post(client, xml, **captured).status_code == 200  # the same request again is a retry: not run
    assert calls == [f"绑定 {invites['P1']}"]
    with Session(engine) as s:  # two days on, the claims are pruned ...
        s.execute(InboundSeen.__table__.delete())
        s.commit()
    stale = signed_query(TOKEN, timestamp=str(int(time.time()) - 2 * 86400), nonce=captured["nonce"])
    assert post(client, xml, **stale).status_code == 403  # ... and the captured request is too old to run
    assert len(calls) == 1


def test_routes_are_absent_without_configuration(db_url: str, engine: Engine) -> None:
    assert wechat_routes(settings(db_url, wechat_token=None), engine) == []


def test_a_failing_core_apologises_and_keeps_nothing(client: httpx.Client, engine: Engine, invites: dict[str, str],
                                                     monkeypatch: pytest.MonkeyPatch,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    def broken(session: Session, incoming: Any, config: Any, now: Any = None) -> Any:
        from handlers.identity import bind

        bind(session, incoming, invites["P1"], utcnow())  # a change that must not survive the failure
        raise RuntimeError("database on fire")

    monkeypatch.setattr(handlers.dispatch, "dispatch", broken)
    assert say(client, f"绑定 {invites['P1']}") == "抱歉，出了点问题，请稍后再试。"
    assert count(engine, InboundSeen) == 0 and count(engine, ChatIdentity) == 0
    assert "database on fire" in caplog.text


# ---- the core in a process of its own (MIANZI_CORE_PROCESS) ---------------------------------------------------


def test_with_the_core_in_its_own_process_the_callback_is_the_same(db_url: str, engine: Engine,
                                                                   invites: dict[str, str]) -> None:
    before = set(multiprocessing.active_children())
    app = create_app(settings(db_url, core_process=True, wechat_aes_key=AES_KEY), background=False)
    with live_app(app) as c:
        children = [p for p in multiprocessing.active_children() if p not in before]
        assert len(children) == 1  # spawned at start-up, before the first message

        def ask(xml: str) -> httpx.Response:
            body, query = encrypted(xml)
            return c.post("/wechat/callback", params=query, content=body)

        assert "绑定成功" in decrypted_reply(ask(text_xml(f"绑定 {invites['P1']}")))["Content"]
        rank = text_xml("排行", msg_id=24581398459112350)
        answers = [ask(rank) for _ in range(3)]  # WeChat's retries: answered from this process, not run again
        first = decrypted_reply(answers[0])["Content"]
        assert "本月销售冠军" in first and "您：第 1 名" in first
        assert all(a.text == "success" or decrypted_reply(a)["Content"] == first for a in answers[1:])

        os.kill(children[0].pid, signal.SIGKILL)  # the core process dies: an apology, then a new one answers
        children[0].join(5)
        assert decrypted_reply(ask(text_xml("排行", msg_id=24581398459112351)))["Content"] == t(
            "web.internal_error", "zh")
        assert "您：第 1 名" in decrypted_reply(ask(text_xml("排行", msg_id=24581398459112352)))["Content"]
    with Session(engine) as s:
        keys = {k for k in s.execute(select(InboundSeen.key)).scalars() if k.startswith("msg:")}  # and a nonce each
    assert "msg:24581398459112350" in keys and "msg:24581398459112352" in keys
    assert "msg:24581398459112351" not in keys and len(keys) == 3  # the one the dead process ran was not kept
    assert [p for p in multiprocessing.active_children() if p not in before] == []  # stopped with the app


@pytest.mark.parametrize("core_process", [False, True])
def test_the_rank_reply_follows_the_standings(db_url: str, engine: Engine, invites: dict[str, str],
                                              core_process: bool) -> None:
    """What `排行` keeps between messages (the board and its rendered lines, the contest's standings
    state) is never shown once the standings changed: after a sales import (standings stale, rebuilt
    by the next question) and after a refresh, the board and the asker's place are the new ones; in
    the web process's core thread and in the core process alike."""
    from models import standings
    from models.db import session_scope
    from models.tables import Contest
    from tests.support import builders as b

    app = create_app(settings(db_url, core_process=core_process), background=False)
    with live_app(app) as c:
        def ask(text: str) -> str:
            answer = c.post("/wechat/callback", params=signed_query(TOKEN), content=text_xml(text))
            return reply_fields(answer.text)["Content"]

        assert "绑定成功" in ask(f"绑定 {invites['CAP']}")
        before = ask("排行")
        assert "🥇 经销商1" in before and "王队长" not in before and "您：第 6 名" in before
        assert ask("排行") == before  # kept: the same board, the same words
        with session_scope(engine) as s:  # a sale that puts the captain first, as `mianzi sales import` adds it
            b.sales(s, {"id": "big", "partner": "CAP", "occurred_at": f"{utcnow().date()}T01:00", "amount": "90000"})
        after = ask("排行")
        assert "🥇 王队长  ¥91,000.00" in after and "🥈 经销商1" in after and "您：第 1 名" in after, after
        with session_scope(engine) as s:  # a refresh that moves nothing still gives the standings a new version
            b.sales(s, {"id": "more", "partner": "P1", "occurred_at": f"{utcnow().date()}T01:00", "amount": "50000"})
            contest_id = s.execute(select(Contest.id)).scalar_one()
            standings.refresh(s, contest_id)
        again = ask("排行")
        assert "🥇 经销商1  ¥100,000.00" in again and "🥈 王队长" in again and "您：第 2 名" in again, again


def test_with_the_core_in_its_own_process_messages_at_once_each_get_their_own_answer(
        db_url: str, engine: Engine, invites: dict[str, str]) -> None:
    """Over HTTP with the core in its own process, whose answers the server's loop reads itself:
    many messages at once from many users, each answered to its own sender, each claimed once
    with its nonce, and a captured query refused (403) all the same."""
    from concurrent.futures import ThreadPoolExecutor

    core = CoreProcess(db_url)
    app = Starlette(routes=wechat_routes(settings(db_url), engine, core=core),
                    lifespan=_core_lifespan(core))
    users = [f"oUser{i:04d}" for i in range(40)]
    try:
        with http_client(app) as c:
            with ThreadPoolExecutor(8) as pool:
                answers = list(pool.map(lambda user: say(c, "帮助", openid=user), users))
            assert core._current()._home is not None  # the server's loop read them
            captured = signed_query(TOKEN)
            assert post(c, text_xml("帮助"), **captured).status_code == 200
            assert post(c, text_xml(f"绑定 {invites['P1']}", openid="oAttacker"), **captured).status_code == 403
    finally:
        core.stop()
    assert len(answers) == 40 and all(answer == answers[0] for answer in answers)  # say checked each recipient
    assert count(engine, InboundSeen) == 2 * 41 and count(engine, ChatIdentity) == 0


def test_with_the_core_in_its_own_process_a_burst_of_replays_is_refused_each_time(
        db_url: str, engine: Engine, invites: dict[str, str]) -> None:
    """Messages and forgeries carrying their captured queries, all at once (so that the core takes
    them together, in one transaction): of each pair exactly one is answered and claimed (whichever
    came first), the other refused (403)."""
    from concurrent.futures import ThreadPoolExecutor

    core = CoreProcess(db_url)
    app = Starlette(routes=wechat_routes(settings(db_url), engine, core=core),
                    lifespan=_core_lifespan(core))
    queries = [signed_query(TOKEN) for _ in range(30)]
    sends = [(text_xml("帮助", openid=f"oUser{i:04d}"), q) for i, q in enumerate(queries)]
    sends += [(text_xml(f"绑定 {invites['P1']}", openid=f"oAttacker{i:04d}"), q) for i, q in enumerate(queries)]
    order = [j for i in range(30) for j in (i, 30 + i)]  # each message beside its forgery
    try:
        with http_client(app) as c, ThreadPoolExecutor(12) as pool:
            statuses = list(pool.map(lambda j: post(c, sends[j][0], **sends[j][1]).status_code, order))
    finally:
        core.stop()
    by_pair = [sorted(statuses[2 * i:2 * i + 2]) for i in range(30)]
    assert by_pair == [[200, 403]] * 30, statuses
    assert count(engine, InboundSeen) == 2 * 30  # each answered message's key and its nonce
    assert count(engine, ChatIdentity) <= 1  # the one invite binds once, whichever forgery came first


def _core_lifespan(core: CoreProcess) -> Callable[[Starlette], AbstractAsyncContextManager[None]]:
    """As `mianzi serve` runs it: the core process started by the server's loop."""

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        await core.start()
        yield

    return lifespan


def test_with_the_core_in_its_own_process_a_late_reply_is_queued(db_url: str, engine: Engine,
                                                                 invites: dict[str, str]) -> None:
    core = CoreProcess(db_url)
    app = Starlette(routes=wechat_routes(settings(db_url), engine, deadline=0.3, core=core))
    msg_id = 24581398459112353
    try:
        with http_client(app) as c:
            with engine.connect() as blocker:  # another attempt holds the claim: the core waits for it
                blocker.execute(insert(InboundSeen), {"platform": "wechat", "key": f"msg:{msg_id}",
                                                      "seen_at": utcnow()})
                assert post(c, text_xml("帮助", msg_id=msg_id)).text == "success"
                blocker.rollback()  # ... and gives up: the core claims it and answers, too late for the request
            deadline = time.monotonic() + 10
            while count(engine, Outbox) == 0 and time.monotonic() < deadline:
                time.sleep(0.02)
            assert post(c, text_xml("帮助", msg_id=msg_id)).text == "success"  # WeChat's retry: not answered twice
    finally:
        core.stop()
    with Session(engine) as s:
        row = s.execute(select(Outbox)).scalar_one()
        assert s.execute(select(func.count()).select_from(InboundSeen)).scalar_one() == 2  # the key, its nonce
    assert row.key == f"reply:wechat:{msg_id}" and row.kind == "reply" and row.status == "pending"
    assert row.chat_ref == OPENID and "绑定 邀请码" in row.payload["text"]
