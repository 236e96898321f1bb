"""Where the dealer page opens from (issue 17): Telegram's `web_app` button on `/rank` answers and the
bot's menu button (only on an https MIANZI_PUBLIC_URL, as Telegram requires), a link in WeChat's
`排行` answers; none of them without MIANZI_PUBLIC_URL."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from bot.web.app import create_app
from messages.render import t
from tests.bot.dealer.conftest import OPENID, PUBLIC_URL, TG, dealer_settings
from tests.support.fake_telegram import FakeBotApi, post, text_update
from tests.support.fake_wechat import FakeWeixin
from tests.support.live_app import live_app
from tests.support.official_account import say

HTTPS = "https://dealer.example.com"
_updates = itertools.count(880_001)


@pytest.fixture
def served(db_url: str, program: dict[str, int], telegram: FakeBotApi, weixin: FakeWeixin, media: Path,
           request: pytest.FixtureRequest) -> Iterator[httpx.Client]:
    public = getattr(request, "param", HTTPS)
    with live_app(create_app(dealer_settings(telegram, weixin, media, public_url=public), background=False)) as client:
        yield client


def buttons(message: dict[str, object]) -> list[dict[str, object]]:
    markup = message.get("reply_markup")  # the fake parses JSON parameters
    if isinstance(markup, str):
        markup = json.loads(markup)
    return [b for row in markup["inline_keyboard"] for b in row] if isinstance(markup, dict) else []


def test_rank_on_telegram_has_a_mini_app_button(served: httpx.Client, telegram: FakeBotApi) -> None:
    assert post(served, text_update(next(_updates), "/rank", chat_id=TG["P1"])) == 200
    answer = telegram.sent()[-1]
    assert answer["chat_id"] == str(TG["P1"])
    (button,) = buttons(answer)
    assert button == {"text": t("dealer.chat.button", "zh"), "web_app": {"url": f"{HTTPS}/me/"}}


def test_the_menu_button_opens_the_page(served: httpx.Client, telegram: FakeBotApi) -> None:
    (call,) = telegram.sent("setChatMenuButton")
    menu = json.loads(call["menu_button"]) if isinstance(call["menu_button"], str) else call["menu_button"]
    assert menu == {"type": "web_app", "text": t("dealer.chat.menu", "zh"), "web_app": {"url": f"{HTTPS}/me/"}}


@pytest.mark.parametrize("served", [PUBLIC_URL], indirect=True)
def test_no_mini_app_on_plain_http(served: httpx.Client, telegram: FakeBotApi) -> None:
    assert post(served, text_update(next(_updates), "/rank", chat_id=TG["P1"])) == 200
    assert buttons(telegram.sent()[-1]) == []
    assert telegram.sent("setChatMenuButton") == []


@pytest.mark.parametrize("served", [None], indirect=True)
def test_nothing_without_a_public_url(served: httpx.Client, telegram: FakeBotApi) -> None:
    assert post(served, text_update(next(_updates), "/rank", chat_id=TG["P1"])) == 200
    assert buttons(telegram.sent()[-1]) == [] and telegram.sent("setChatMenuButton") == []
    assert "/me/" not in say(served, "排行", openid=OPENID["P1"])


def test_rank_on_wechat_links_the_page(served: httpx.Client) -> None:
    text = say(served, "排行", openid=OPENID["P1"])
    assert t("dealer.chat.link", "zh", url=f"{HTTPS}/me/wechat") in text
    answer = served.get("/me/wechat", follow_redirects=False)
    assert answer.status_code == 302 and "/connect/oauth2/authorize" in answer.headers["location"]


def test_the_group_part_of_rank_carries_no_button(served: httpx.Client, telegram: FakeBotApi) -> None:
    update = text_update(next(_updates), "/rank", chat_id=TG["P1"])
    update["message"]["chat"] = {"id": -100555, "type": "supergroup", "title": "EAST"}
    assert post(served, update) == 200
    for message in telegram.sent():
        if message["chat_id"] == "-100555":
            assert buttons(message) == []
