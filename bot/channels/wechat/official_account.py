"""`GET/POST /wechat/callback`: the WeChat Official Account (公众号, service account) channel.

- `GET` with `signature, timestamp, nonce, echostr`: the URL check of the WeChat console; the
  `echostr` goes back as is when the signature matches the token.
- `POST`: every request must carry `signature = sha1(sorted(token, timestamp, nonce))`, or it
  gets 403. In plaintext mode the body is the message XML. In safe mode (`MIANZI_WECHAT_AES_KEY`
  set) the body must be encrypted (`encrypt_type=aes`, an `<Encrypt>` field, and `msg_signature`
  over it); a plaintext body is refused then, so nobody can downgrade the channel; the decrypted
  payload must name our app id, and the reply is encrypted the same way.
- Both must carry a `timestamp` within `MIANZI_WECHAT_MAX_AGE_SECONDS` of now (403 otherwise), and
  a POST's (timestamp, nonce) goes with one message only (`bot.core.dedupe.Nonce`): in plaintext mode
  the signature covers no body, so a captured query string could otherwise carry any message
  while it is fresh. Plaintext mode is still forgeable by whoever sees a request before WeChat's
  own arrives; `mianzi serve` warns about it and safe mode is the cure.
- The answer is a passive text reply when the core has one within 4 s, else `success`
  (`bot.channels.wechat.inbound`). Bad input gets a 4xx, a log line saying why, and nothing is run.
"""

from __future__ import annotations

import logging
import time

from sqlalchemy import Engine
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route
from wechatpy.crypto import PrpCrypto, WeChatCrypto
from wechatpy.exceptions import InvalidAppIdException

from bot.channels.wechat.callback_xml import (
    Rejected,
    check_fresh,
    client,
    decrypt,
    inbound,
    make_crypto,
    new_nonce,
    parse_xml,
    read_body,
    signature_ok,
    text_reply,
)
from bot.channels.wechat.inbound import DEADLINE, Responder
from bot.core.dedupe import Nonce
from bot.core.runner import Runner
from bot.settings import Settings

log = logging.getLogger("mianzi.wechat")

SUCCESS = "success"


class OfficialAccount:
    def __init__(self, settings: Settings, engine: Engine, deadline: float = DEADLINE,
                 core: Runner | None = None) -> None:
        if not settings.wechat_token or not settings.wechat_app_id:
            raise ValueError("MIANZI_WECHAT_TOKEN and MIANZI_WECHAT_APP_ID are required for /wechat/callback")
        self.token = settings.wechat_token
        self.app_id = settings.wechat_app_id
        self.max_age = settings.wechat_max_age_seconds
        self.crypto = (make_crypto(WeChatCrypto, self.token, settings.wechat_aes_key, self.app_id,
                                   "MIANZI_WECHAT_AES_KEY") if settings.wechat_aes_key else None)
        self.responder = Responder(engine, settings, "wechat", deadline=deadline, core=core)

    def _signed(self, request: Request) -> Nonce:
        q = request.query_params
        timestamp, nonce = q.get("timestamp"), q.get("nonce")
        if not signature_ok(q.get("signature"), self.token, timestamp, nonce):
            raise Rejected(403, "wrong or missing signature")
        check_fresh(timestamp, self.max_age)
        return Nonce.of(str(timestamp), str(nonce), self.max_age)

    async def verify(self, request: Request) -> Response:
        try:
            self._signed(request)
        except Rejected as exc:
            log.warning("wechat: URL check refused (%s) from %s", exc.reason, client(request))
            return PlainTextResponse("forbidden", status_code=exc.status)
        return PlainTextResponse(request.query_params.get("echostr", ""))

    async def receive(self, request: Request) -> Response:
        try:
            nonce = self._signed(request)
            fields = parse_xml(await read_body(request))
            if self.crypto is not None:
                fields = self._decrypted(request, fields)
            msg = inbound(fields)
            text = await self.responder.reply(msg, nonce)
        except Rejected as exc:
            log.warning("wechat: callback refused with %s: %s (from %s)", exc.status, exc.reason, client(request))
            return PlainTextResponse("bad request" if exc.status != 403 else "forbidden", status_code=exc.status)
        if text is None:
            return PlainTextResponse(SUCCESS)
        xml = text_reply(msg.from_user, msg.to_user, text)
        if self.crypto is not None:
            xml = self.crypto.encrypt_message(xml, new_nonce(), str(int(time.time())))
        return Response(xml, media_type="application/xml")

    def _decrypted(self, request: Request, fields: dict[str, str]) -> dict[str, str]:
        q = request.query_params
        encrypted = fields.get("Encrypt")
        if q.get("encrypt_type") != "aes" or not encrypted:
            raise Rejected(400, "safe mode is on but the message is not encrypted")
        if not signature_ok(q.get("msg_signature"), self.token, q.get("timestamp"), q.get("nonce"), encrypted):
            raise Rejected(403, "wrong or missing msg_signature")
        assert self.crypto is not None
        return parse_xml(decrypt(self.crypto.key, encrypted, self.app_id, PrpCrypto, InvalidAppIdException))


def wechat_routes(settings: Settings, engine: Engine, *, deadline: float = DEADLINE,
                  core: Runner | None = None) -> list[Route]:
    """The Official Account callback routes (empty when the account is not configured)."""
    if not settings.receives("wechat"):
        return []
    account = OfficialAccount(settings, engine, deadline, core)
    return [Route("/wechat/callback", account.verify, methods=["GET"]),
            Route("/wechat/callback", account.receive, methods=["POST"])]
