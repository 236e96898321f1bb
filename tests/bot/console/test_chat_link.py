"""`/console` (`后台`) in chat: an admin's one-time sign-in link, always in private (issue 15).

Through the real doors: Telegram updates POSTed to the webhook, the answers caught by the fake Bot
API; the link then opens a console session over HTTP."""

from __future__ import annotations

import copy
import itertools
from collections.abc import Iterator
from datetime import timedelta
from urllib.parse import urlsplit

import httpx
import pytest
from sqlalchemy import Engine, func, select

from bot.web.app import create_app
from messages.render import t
from models.db import session_scope
from models.tables import ChatIdentity, Partner, SignInLink
from models.values import utcnow
from tests.support.console_web import PUBLIC_URL
from tests.support.fake_telegram import HEADERS, FakeBotApi, bot_api, post, sample, settings_for, text_update
from tests.support.live_app import live_app

BOSS, DEALER, GROUP = 7300009, 7300001, -1009876543210
_updates = itertools.count(990_001)


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeBotApi]:
    yield from bot_api(monkeypatch)


@pytest.fixture
def chat(db_url: str, fake: FakeBotApi, engine: Engine, admins: None) -> Iterator[httpx.Client]:
    now = utcnow()
    with session_scope(engine) as s:
        for code, ref in (("BOSS", BOSS), ("P1", DEALER)):
            pid = s.execute(select(Partner.id).where(Partner.code == code)).scalar_one()
            s.add(ChatIdentity(partner_id=pid, platform="telegram", user_ref=str(ref), chat_ref=str(ref),
                               bound_at=now - timedelta(days=1), last_seen_at=now - timedelta(days=1)))
    with live_app(create_app(settings_for(fake, public_url=PUBLIC_URL), background=False)) as client:
        client.follow_redirects = False
        yield client


def links(engine: Engine) -> int:
    with session_scope(engine) as s:
        return int(s.execute(select(func.count()).select_from(SignInLink)).scalar_one())


def test_an_admin_gets_a_working_link_in_private(chat: httpx.Client, fake: FakeBotApi, engine: Engine) -> None:
    assert post(chat, text_update(next(_updates), "后台", chat_id=BOSS)) == 200
    answer = fake.sent()[-1]
    assert answer["chat_id"] == str(BOSS)
    url = next(word for word in answer["text"].split() if word.startswith(PUBLIC_URL))
    assert t("console.chat.link", "zh", minutes=10, url="").split("：")[0] in answer["text"]
    link = urlsplit(url)
    assert chat.get(f"{link.path}?{link.query}").status_code == 200
    signed = chat.post("/admin/signin", data={"token": link.query.split("token=")[1]})
    assert signed.status_code == 303 and "mianzi_console=" in signed.headers["set-cookie"]
    assert chat.get("/admin/").status_code == 200


def test_in_a_group_the_link_goes_privately_and_dealers_get_none(chat: httpx.Client, fake: FakeBotApi,
                                                                engine: Engine) -> None:
    update = copy.deepcopy(sample("group_command", update_id=next(_updates)))
    update["message"].update(text="/console")
    update["message"].pop("entities")
    update["message"]["from"]["id"] = BOSS
    update["message"]["chat"]["id"] = GROUP
    assert chat.post("/telegram/webhook", json=update, headers=HEADERS).status_code == 200
    sent = fake.sent()
    in_group = [m["text"] for m in sent if m["chat_id"] == str(GROUP)]
    private = [m["text"] for m in sent if m["chat_id"] == str(BOSS)]
    assert in_group and not any("token=" in text for text in in_group)  # the group sees one short line
    assert any(f"{PUBLIC_URL}/admin/signin?token=" in text for text in private)
    assert links(engine) == 1

    assert post(chat, text_update(next(_updates), "/console", chat_id=DEALER)) == 200
    assert fake.sent()[-1]["text"] == t("chat.admin_only", "zh")
    assert links(engine) == 1


def test_without_a_public_url_the_admin_is_told_why(fake: FakeBotApi, engine: Engine, admins: None) -> None:
    with session_scope(engine) as s:
        pid = s.execute(select(Partner.id).where(Partner.code == "BOSS")).scalar_one()
        s.add(ChatIdentity(partner_id=pid, platform="telegram", user_ref=str(BOSS), chat_ref=str(BOSS),
                           bound_at=utcnow(), last_seen_at=utcnow()))
    with live_app(create_app(settings_for(fake), background=False)) as client:
        assert post(client, text_update(next(_updates), "/console", chat_id=BOSS)) == 200
    assert fake.sent()[-1]["text"] == t("console.chat.no_public_url", "zh")
    assert links(engine) == 0
