"""A WeCom app as the tests configure it — the corp id, token and EncodingAESKey of WeCom's documented
test vector — and its callback: messages encrypted and signed as WeCom does, the encrypted answer opened.
"""

from __future__ import annotations

from typing import Any

import httpx
from wechatpy.enterprise.crypto import WeChatCrypto

from bot.settings import Settings
from tests.support.fake_wechat import fresh_stamp, reply_fields

CORP_ID = "wx5823bf96d3bd56c7"
TOKEN = "QDG6eK"
AES_KEY = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"
AGENT_ID = "218"
CRYPTO = WeChatCrypto(TOKEN, AES_KEY, CORP_ID)


def settings(db_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {"database_url": db_url, "wecom_corp_id": CORP_ID, "wecom_secret": "corp-secret",
                              "wecom_agent_id": AGENT_ID, "wecom_token": TOKEN, "wecom_aes_key": AES_KEY}
    values.update(overrides)
    return Settings(**values)


def encrypted(xml: str, crypto: WeChatCrypto = CRYPTO, timestamp: str | None = None,
              nonce: str | None = None) -> tuple[str, dict[str, str]]:
    """Body and query of a callback (now, a new nonce), encrypted and signed the way WeCom does it."""
    timestamp, nonce = fresh_stamp(timestamp, nonce)
    fields = reply_fields(crypto.encrypt_message(xml, nonce, timestamp))
    body = (f"<xml><ToUserName><![CDATA[{CORP_ID}]]></ToUserName><Encrypt><![CDATA[{fields['Encrypt']}]]></Encrypt>"
            f"<AgentID><![CDATA[{AGENT_ID}]]></AgentID></xml>")
    return body, {"msg_signature": fields["MsgSignature"], "timestamp": timestamp, "nonce": nonce}


def opened(response: httpx.Response) -> dict[str, str]:
    """The fields of an encrypted passive reply, decrypted (the response checked to be a 200)."""
    assert response.status_code == 200, response.text
    outer = reply_fields(response.text)
    return reply_fields(CRYPTO.decrypt_message(response.text, outer["MsgSignature"], outer["TimeStamp"],
                                               outer["Nonce"]))
