"""Invite codes against guessing, through the real doors: WeChat callbacks (signed XML), Telegram
webhooks (update JSON) and the `mianzi partners …` command line.

- failed binds are throttled per chat account and over all accounts, in the database (two app
  instances on one database share the count), and past the limit even a right code is refused;
- each failure is logged at WARNING with the account, never the code;
- codes are 10 characters, and a new invite revokes the partner's older unused ones;
- a second account bound to a partner tells the partner's other account and the admins;
- admins list (`partners show`) and remove (`partners unbind`) a partner's accounts.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, func, select, update
from sqlmodel import Session

from bot.web.app import create_app
from messages.render import t
from models.db import session_scope
from models.identities import INVITE_ALPHABET, new_invite
from models.tables import BindFailure, ChatIdentity, Outbox, Partner
from models.values import utcnow
from tests.support import builders as b
from tests.support.cli_runner import mianzi
from tests.support.fake_telegram import FakeBotApi, settings_for, text_update
from tests.support.fake_telegram import post as tg_post
from tests.support.fake_wechat import build_program, http_client, reply_fields, sample_xml
from tests.support.live_app import live_app
from tests.support.official_account import make_app, post, text_xml

THROTTLED = t("chat.invite_throttled", "zh", minutes=10)
WRONG = "23456789AB"  # the shape of a code, but nobody's


def say(client: httpx.Client, content: str, openid: str) -> str:
    response = post(client, text_xml(content, openid))
    assert response.status_code == 200, response.text
    return reply_fields(response.text)["Content"]


def follow(client: httpx.Client, code: str, openid: str) -> str:
    xml = sample_xml("subscribe_qrscene", EventKey=f"qrscene_{code}", FromUserName=openid)
    return reply_fields(post(client, xml).text)["Content"]


def identities(engine: Engine) -> list[tuple[str, str, str]]:
    with Session(engine) as s:
        return sorted(tuple(r) for r in s.execute(select(ChatIdentity.platform, ChatIdentity.user_ref, Partner.code)
                                .join(Partner, Partner.id == ChatIdentity.partner_id)).all())


def invite(engine: Engine, code: str) -> str:
    with session_scope(engine) as s:
        return new_invite(s, s.execute(select(Partner).where(Partner.code == code)).scalar_one()).code


@pytest.fixture
def program(engine: Engine) -> dict[str, str]:
    return build_program(engine)


@pytest.fixture
def wechat(db_url: str, engine: Engine) -> Iterator[httpx.Client]:
    with http_client(make_app(db_url, engine)) as c:
        yield c


def test_wrong_codes_lock_the_account_even_for_a_right_code(db_url: str, engine: Engine, wechat: httpx.Client,
                                                            program: dict[str, str],
                                                            caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    with http_client(make_app(db_url, engine)) as other:  # a second server process on the same database
        for i in range(5):
            assert "邀请码不正确" in say(wechat if i % 2 else other, f"绑定 {WRONG}", "oGuesser")
    assert say(wechat, f"绑定 {program['P1']}", "oGuesser") == THROTTLED  # the right code, refused politely
    assert follow(wechat, program["P1"], "oGuesser") == THROTTLED  # an invite QR code goes the same way
    assert identities(engine) == []
    assert "绑定成功" in say(wechat, f"绑定 {program['P1']}", "oSomeoneElse")  # others are not locked out
    failures = [r for r in caplog.records if r.name == "mianzi.identity" and r.levelno == logging.WARNING]
    assert len(failures) == 7 and all("wechat:oGuesser" in r.getMessage() for r in failures)
    assert WRONG not in caplog.text and program["P1"] not in caplog.text  # never the code
    with Session(engine) as s:  # ten minutes on, the failures have left the window: the right code works
        s.execute(update(BindFailure).values(failed_at=BindFailure.failed_at - timedelta(minutes=11)))
        s.commit()
    assert "绑定成功" in say(wechat, f"绑定 {program['P2']}", "oGuesser")


def test_telegram_start_links_go_through_the_same_throttle(db_url: str, engine: Engine, program: dict[str, str],
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    with FakeBotApi() as fake, live_app(create_app(settings_for(fake, invite_max_failures=3))) as client:
        for update_id in range(40001, 40004):
            assert tg_post(client, text_update(update_id, f"/start {WRONG}")) == 200
        assert tg_post(client, text_update(40004, f"/start {program['P1']}")) == 200
        texts = [m["text"] for m in fake.sent("sendMessage")]
    assert len(texts) == 4 and all("邀请码不正确" in x for x in texts[:3])
    assert texts[3] == THROTTLED
    assert identities(engine) == []


def test_a_global_ceiling_stops_guessing_from_many_accounts(db_url: str, engine: Engine,
                                                            program: dict[str, str]) -> None:
    with http_client(make_app(db_url, engine, invite_max_failures_global=3)) as c:
        for n in range(3):
            assert "邀请码不正确" in say(c, f"绑定 {WRONG}", f"oBot{n}")
        assert say(c, f"绑定 {program['P1']}", "oBot3") == THROTTLED
        assert say(c, f"绑定 {program['P1']}", "oRealDealer") == THROTTLED  # everyone waits, for a while
    assert identities(engine) == []


def test_codes_are_long_and_a_new_invite_revokes_the_older_ones(db_url: str, engine: Engine,
                                                                wechat: httpx.Client) -> None:
    with session_scope(engine) as s:
        b.partners(s, {"code": "P1", "name": "经销商1"})
    first = mianzi("partners", "invite", "P1", "--json").json()["invite"]
    second = mianzi("partners", "invite", "P1", "--json").json()["invite"]
    assert len(first) == len(second) == 10 and set(first + second) <= set(INVITE_ALPHABET)
    assert "已过期" in say(wechat, f"绑定 {first}", "oP1")
    assert "绑定成功" in say(wechat, f"绑定 {second}", "oP1")


def test_a_second_account_tells_the_first_and_the_admins(engine: Engine, wechat: httpx.Client) -> None:
    with session_scope(engine) as s:
        b.partners(s, {"code": "P1", "name": "经销商1"}, {"code": "ADM", "name": "李经理", "role": "admin"})
    assert "绑定成功" in say(wechat, f"绑定 {invite(engine, 'ADM')}", "oAdmin")
    assert "绑定成功" in say(wechat, f"绑定 {invite(engine, 'P1')}", "oFirst")
    with Session(engine) as s:
        assert s.execute(select(func.count()).select_from(Outbox)).scalar_one() == 0  # a first account: no news
    assert "绑定成功" in say(wechat, f"绑定 {invite(engine, 'P1')}", "oSecond")
    with Session(engine) as s:
        rows = {r.chat_ref: r.payload["text"] for r in s.execute(select(Outbox)).scalars()}
    assert set(rows) == {"oFirst", "oAdmin"}  # never the new account itself
    assert "微信公众号" in rows["oFirst"] and "联系渠道经理" in rows["oFirst"]
    assert "经销商1（P1）" in rows["oAdmin"] and "mianzi partners unbind P1 --platform wechat" in rows["oAdmin"]


def test_admins_list_and_unbind_a_partners_accounts(engine: Engine, wechat: httpx.Client) -> None:
    with session_scope(engine) as s:
        b.partners(s, {"code": "P1", "name": "经销商1", "team": "EAST"}, {"code": "P2", "name": "经销商2"})
    say(wechat, f"绑定 {invite(engine, 'P1')}", "oP1")
    say(wechat, f"绑定 {invite(engine, 'P2')}", "oP2")
    with session_scope(engine) as s:  # a Telegram account of P1's too (bound on another door)
        p1 = s.execute(select(Partner).where(Partner.code == "P1")).scalar_one()
        s.add(ChatIdentity(partner_id=p1.id, platform="telegram", user_ref="1111111", bound_at=utcnow(),
                           last_seen_at=None))
    shown = mianzi("partners", "show", "P1", "--json")
    assert shown.code == 0, shown.err
    doc: dict[str, Any] = shown.json()
    assert (doc["partner"], doc["name"], doc["team"]) == ("P1", "经销商1", "EAST")
    assert sorted((a["platform"], a["user_ref"], a["active"]) for a in doc["accounts"]) == [
        ("telegram", "1111111", True), ("wechat", "oP1", True)]
    assert all(a["bound_at"].endswith("+08:00") for a in doc["accounts"])  # program time, with its offset
    table = mianzi("partners", "show", "P1")
    assert table.code == 0 and "oP1" in table.out and "1111111" in table.out and "Asia/Shanghai" in table.out

    bad = mianzi("partners", "unbind", "P1", "--platform", "wechatt")
    assert bad.code != 0 and "wechatt" in bad.err
    assert mianzi("partners", "unbind", "NOBODY").code != 0
    assert len(identities(engine)) == 3  # nothing changed

    gone = mianzi("partners", "unbind", "P1", "--platform", "wechat", "--json")
    assert gone.code == 0 and [a["user_ref"] for a in gone.json()["removed"]] == ["oP1"]
    assert identities(engine) == [("telegram", "1111111", "P1"), ("wechat", "oP2", "P2")]
    assert "绑定 邀请码" in say(wechat, "排行", "oP1")  # a stranger again
    plain = mianzi("partners", "unbind", "P1")
    assert plain.code == 0 and "telegram:1111111" in plain.out
    assert identities(engine) == [("wechat", "oP2", "P2")]
    assert "还没有绑定聊天账号" in mianzi("partners", "show", "P1").out
