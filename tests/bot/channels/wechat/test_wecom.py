"""The WeCom callback end to end over HTTP, starting with the documentation's public test vector
(corp id wx5823bf96d3bd56c7, token QDG6eK and the EncodingAESKey, in `tests/support/wecom.py`): its URL-check `echostr`
and its encrypted message, exactly as printed in WeCom's sample code, decrypt to the documented
plaintext (`tests/fixtures/wechat/wecom_text_plain.xml`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy import Engine, func, select
from sqlmodel import Session
from starlette.applications import Starlette
from wechatpy.enterprise.crypto import WeChatCrypto

from bot.channels.wechat.callback_xml import signature
from bot.channels.wechat.wecom import wecom_routes
from models.tables import ChatIdentity, InboundSeen
from tests.support.fake_wechat import FIXTURES, build_program, fresh_stamp, http_client, reply_fields, sample_xml
from tests.support.spies import spy_on_dispatch
from tests.support.wecom import AES_KEY, CORP_ID, CRYPTO, TOKEN, encrypted, opened, settings

# The documented URL check: GET /cgi-bin/wxpush?msg_signature=…&timestamp=…&nonce=…&echostr=…
VECTOR_URL = {"msg_signature": "5c45ff5e21c57e6ad56bac8758b79b1d9ac89fd3", "timestamp": "1409659589",
              "nonce": "263014780",
              "echostr": "P9nAzCzyDtyTWESHep1vC5X9xho/qYX3Zpb4yKa9SKld1DsH3Iyt3tP3zNdtp+4RPcs8TgAE7OaBO+FZXvnaqQ=="}
VECTOR_ECHO = "1616140317555161061"
# The documented message: POST /cgi-bin/wxpush?msg_signature=…&timestamp=1409659813&nonce=1372623149
VECTOR_QUERY = {"msg_signature": "477715d11cdb4164915debcba66cb864d751f3e6", "timestamp": "1409659813",
                "nonce": "1372623149"}
VECTOR_BODY = (
    "<xml><ToUserName><![CDATA[wx5823bf96d3bd56c7]]></ToUserName><Encrypt><![CDATA["
    "RypEvHKD8QQKFhvQ6QleEB4J58tiPdvo+rtK1I9qca6aM/wvqnLSV5zEPeusUiX5L5X/0lWfrf0QADHHhGd3QczcdCUpj911L3vg3W/sYYvu"
    "JTs3TUUkSUXxaccAS0qhxchrRYt66wiSpGLYL42aM6A8dTT+6k4aSknmPj48kzJs8qLjvd4Xgpue06DOdnLxAUHzM6+kDZ+HMZfJYuR+Ltw"
    "Gc2hgf5gsijff0ekUNXZiqATP7PF5mZxZ3Izoun1s4zG4LUMnvw2r+KqCKIw+3IQH03v+BCA9nMELNqbSf6tiWSrXJB3LAVGUcallcrw8V2"
    "t9EL4EhzJWrQUax5wLVMNS0+rUPA3k22Ncx4XXZS9o0MBH27Bo6BpNelZpS+/uh9KsNlY6bHCmJU9p8g7m3fVKn28H3KDYA5Pl/T8Z1ptDA"
    "Ve0lXdQ2YoyyH2uyPIGHBZZIs2pDBS8R07+qN+E7Q==]]></Encrypt><AgentID><![CDATA[218]]></AgentID></xml>")

@pytest.fixture
def client(db_url: str, engine: Engine) -> Iterator[httpx.Client]:
    with http_client(Starlette(routes=wecom_routes(settings(db_url), engine))) as c:
        yield c


@pytest.fixture
def vector_client(db_url: str, engine: Engine) -> Iterator[httpx.Client]:
    """A client whose freshness window reaches back to the documentation's vectors of 2014."""
    app = Starlette(routes=wecom_routes(settings(db_url, wechat_max_age_seconds=2**31), engine))
    with http_client(app) as c:
        yield c


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[str | None]:
    """Every text the core was asked to run."""
    return spy_on_dispatch(monkeypatch, lambda incoming: incoming.text)


_ids = iter(range(4561255354251346000, 4561255354251999999))


def say(client: httpx.Client, text: str, user: str = "zhangsan") -> str:
    xml = sample_xml("wecom_text_plain", FromUserName=user, Content=text, MsgId=str(next(_ids)))
    body, query = encrypted(xml)
    reply = opened(client.post("/wecom/callback", params=query, content=body))
    assert reply["ToUserName"] == user and reply["FromUserName"] == CORP_ID and reply["MsgType"] == "text"
    return reply["Content"]


def test_documented_url_check_vector(vector_client: httpx.Client) -> None:
    response = vector_client.get("/wecom/callback", params=VECTOR_URL)
    assert response.status_code == 200 and response.text == VECTOR_ECHO


def test_documented_message_vector_decrypts_to_the_documented_plaintext(vector_client: httpx.Client,
                                                                       calls: list) -> None:
    plain = CRYPTO.decrypt_message(VECTOR_BODY, VECTOR_QUERY["msg_signature"], VECTOR_QUERY["timestamp"],
                                   VECTOR_QUERY["nonce"])
    documented = (FIXTURES / "wecom_text_plain.xml").read_text(encoding="utf-8")
    assert plain.replace("\n", "") == documented.strip()
    # posted as WeCom posts it: run as the text "hello" from user "mycreate", answered encrypted
    reply = opened(vector_client.post("/wecom/callback", params=VECTOR_QUERY, content=VECTOR_BODY))
    assert reply["ToUserName"] == "mycreate" and reply["FromUserName"] == CORP_ID
    assert "绑定 邀请码" in reply["Content"]  # an unknown member is told how to bind
    assert calls == ["hello"]


def test_bind_and_rank_in_wecom(client: httpx.Client, engine: Engine) -> None:
    invites = build_program(engine)
    assert "绑定成功" in say(client, f"绑定 {invites['P2']}")
    assert "您：第 2 名" in say(client, "排行")
    with Session(engine) as s:
        identity = s.execute(select(ChatIdentity)).scalar_one()
        assert (identity.platform, identity.user_ref) == ("wecom", "zhangsan")


def test_wecom_menu_click_and_same_msgid_once(client: httpx.Client, engine: Engine, calls: list) -> None:
    invites = build_program(engine)
    say(client, f"绑定 {invites['P1']}")
    click = ("<xml><ToUserName><![CDATA[wx5823bf96d3bd56c7]]></ToUserName><FromUserName><![CDATA[zhangsan]]>"
             "</FromUserName><CreateTime>1795392500</CreateTime><MsgType><![CDATA[event]]></MsgType>"
             "<Event><![CDATA[click]]></Event><EventKey><![CDATA[rank]]></EventKey><AgentID>218</AgentID></xml>")
    body, query = encrypted(click)
    first = opened(client.post("/wecom/callback", params=query, content=body))["Content"]
    assert "您：第 1 名" in first
    again = client.post("/wecom/callback", params=query, content=body)
    assert again.text == "" or opened(again)["Content"] == first
    assert calls.count("/rank") == 1


def refused(engine: Engine, calls: list, caplog: pytest.LogCaptureFixture, response: httpx.Response, status: int,
            reason: str) -> None:
    assert response.status_code == status, response.text
    assert calls == []
    with Session(engine) as s:
        assert s.execute(select(func.count()).select_from(InboundSeen)).scalar_one() == 0
        assert s.execute(select(func.count()).select_from(ChatIdentity)).scalar_one() == 0
    assert any(reason in r.getMessage() for r in caplog.records if r.name.startswith("mianzi")), caplog.text


@pytest.mark.parametrize(("case", "status", "reason"), [
    ("url_wrong_signature", 403, "msg_signature"),
    ("wrong_msg_signature", 403, "msg_signature"),
    ("no_encrypt", 400, "nothing encrypted"),
    ("other_corp", 403, "another app id"),
    ("other_agent", 403, "agent 1000002"),
    ("not_xml", 400, "not XML"),
    ("huge", 413, "declared"),
])
def test_bad_wecom_requests(client: httpx.Client, engine: Engine, calls: list, caplog: pytest.LogCaptureFixture,
                            case: str, status: int, reason: str) -> None:
    caplog.set_level(logging.INFO)
    url = "/wecom/callback"
    xml = (FIXTURES / "wecom_text_plain.xml").read_text(encoding="utf-8")
    if case == "url_wrong_signature":
        response = client.get(url, params={**VECTOR_URL, "msg_signature": signature("a", "b")})
    elif case == "wrong_msg_signature":
        response = client.post(url, params={**VECTOR_QUERY, "msg_signature": signature("a", "b")}, content=VECTOR_BODY)
    elif case == "no_encrypt":
        response = client.post(url, params=VECTOR_QUERY, content=xml)
    elif case == "other_corp":
        body, query = encrypted(xml, crypto=WeChatCrypto(TOKEN, AES_KEY, "ww0000000000000000"))
        response = client.post(url, params=query, content=body)
    elif case == "other_agent":
        body, query = encrypted(xml.replace("<AgentID>218</AgentID>", "<AgentID>1000002</AgentID>"))
        response = client.post(url, params=query, content=body)
    elif case == "not_xml":
        response = client.post(url, params=VECTOR_QUERY, content=b"hello")
    else:
        response = client.post(url, params=VECTOR_QUERY, content=b"<xml>" + b"x" * (8 << 20) + b"</xml>")
    refused(engine, calls, caplog, response, status, reason)


@pytest.mark.parametrize("when", ["1", "2020", "abc", "a year ahead", "301 s ago", "two days ago"])
def test_timestamps_outside_the_window_are_refused(client: httpx.Client, engine: Engine, calls: list,
                                                   caplog: pytest.LogCaptureFixture, when: str) -> None:
    caplog.set_level(logging.INFO)
    now = int(time.time())
    timestamp = {"a year ahead": str(now + 365 * 86400), "301 s ago": str(now - 301),
                 "two days ago": str(now - 2 * 86400)}.get(when, when)
    build_program(engine)
    xml = sample_xml("wecom_text_plain", Content="帮助", MsgId=str(next(_ids)))
    body, query = encrypted(xml, timestamp=timestamp)
    echo = reply_fields(CRYPTO.encrypt_message("<xml></xml>", "1", timestamp))["Encrypt"]
    url_query = {"msg_signature": signature(TOKEN, timestamp, "1", echo), "timestamp": timestamp, "nonce": "1",
                 "echostr": echo}
    assert client.get("/wecom/callback", params=url_query).status_code == 403
    refused(engine, calls, caplog, client.post("/wecom/callback", params=query, content=body), 403, "timestamp")


def test_a_nonce_goes_with_one_message(client: httpx.Client, engine: Engine, calls: list) -> None:
    invites = build_program(engine)
    timestamp, nonce = fresh_stamp()
    first = sample_xml("wecom_text_plain", Content="帮助", MsgId=str(next(_ids)))
    body, query = encrypted(first, timestamp=timestamp, nonce=nonce)
    assert "绑定 邀请码" in opened(client.post("/wecom/callback", params=query, content=body))["Content"]
    other = sample_xml("wecom_text_plain", Content=f"绑定 {invites['P1']}", MsgId=str(next(_ids)))
    body, query = encrypted(other, timestamp=timestamp, nonce=nonce)
    assert client.post("/wecom/callback", params=query, content=body).status_code == 403
    assert calls == ["帮助"]
    with Session(engine) as s:
        assert s.execute(select(func.count()).select_from(ChatIdentity)).scalar_one() == 0


def test_routes_need_the_whole_configuration(db_url: str, engine: Engine) -> None:
    assert wecom_routes(settings(db_url, wecom_aes_key=None), engine) == []
    assert len(wecom_routes(settings(db_url), engine)) == 2
