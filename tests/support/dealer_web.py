"""The dealer page over real HTTP: Telegram initData signed with the bot token as Telegram signs it,
and sign-in helpers (`telegram_signed_in`)."""

from __future__ import annotations

import json
import time
from urllib.parse import urlencode

import httpx

from bot.dealer.telegram_auth import sign

BOT_TOKEN = "123456:TEST-token"  # tests.support.fake_telegram.settings_for's token


def init_data(user_id: int, *, token: str = BOT_TOKEN, auth_date: int | None = None, language: str = "zh-hans",
              **extra: str) -> str:
    """A Mini App's initData for this Telegram user, as the Telegram client hands it to the page."""
    user = {"id": user_id, "first_name": "Test", "language_code": language, "allows_write_to_pm": True}
    fields = {"query_id": "AAHdF6IQAAAAAN0XohDhrOrc", "user": json.dumps(user, separators=(",", ":")),
              "auth_date": str(int(time.time()) if auth_date is None else auth_date), **extra}
    fields["hash"] = sign(fields, token)
    return urlencode(fields)


def telegram_signed_in(client: httpx.Client, user_id: int) -> httpx.Response:
    """Sign `client` in as the partner bound to this Telegram user (the form the page's script posts)."""
    return client.post("/me/telegram", data={"init_data": init_data(user_id)})
