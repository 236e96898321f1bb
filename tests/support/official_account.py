"""An Official Account as the tests configure it (plaintext mode unless a test gives an AES key), and its
callback: text messages signed as WeChat signs them, posted to `/wechat/callback`, the passive reply read back.
"""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy import Engine
from starlette.applications import Starlette

from bot.channels.wechat.official_account import wechat_routes
from bot.settings import Settings
from tests.support.fake_wechat import reply_fields, sample_xml, signed_query

APP_ID = "wx0123456789abcdef"
TOKEN = "mianzi-token-42"
OPENID = "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"
GH = "gh_0123456789ab"  # the account's own id, the sender of every reply


def settings(db_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {"database_url": db_url, "wechat_app_id": APP_ID, "wechat_app_secret": "s3cret",
                              "wechat_token": TOKEN, "wechat_aes_key": None}
    values.update(overrides)
    return Settings(**values)


def make_app(db_url: str, engine: Engine, deadline: float = 4.0, **overrides: Any) -> Starlette:
    return Starlette(routes=wechat_routes(settings(db_url, **overrides), engine, deadline=deadline))


_msg_ids = iter(range(24581398459200000, 24581398459900000))


def text_xml(content: str, openid: str = OPENID, msg_id: int | None = None) -> str:
    """A text message from `openid`, each with a new MsgId unless given (the callback de-duplicates by it)."""
    return sample_xml("text", Content=content, FromUserName=openid, MsgId=str(msg_id or next(_msg_ids)))


def post(client: httpx.Client, xml: str | bytes, **query: str) -> httpx.Response:
    return client.post("/wechat/callback", params=signed_query(TOKEN, **query), content=xml)


def say(client: httpx.Client, content: str, openid: str = OPENID) -> str:
    """`content` typed by `openid`; the passive reply's text (checked to be a text reply to them from the account)."""
    response = post(client, text_xml(content, openid))
    assert response.status_code == 200, response.text
    fields = reply_fields(response.text)
    assert fields["ToUserName"] == openid and fields["FromUserName"] == GH and fields["MsgType"] == "text"
    return fields["Content"]
