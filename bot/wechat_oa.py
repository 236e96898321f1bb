"""`GET/POST /wechat/callback`: the WeChat Official Account (公众号, service account) channel.

- `GET` with `signature, timestamp, nonce, echostr`: the URL check of the WeChat console; the
  `echostr` goes back as is when the signature matches the token.
- `POST`: every request must carry `signature = sha1(sorted(token, timestamp, nonce))`, or it
  gets 403. In plaintext mode the body is the message XML. In safe mode (`MIANZI_WECHAT_AES_KEY`
  set) the body must be encrypted (`encrypt_type=aes`, an `<Encrypt>` field, and `msg_signature`
  over it); a plaintext body is refused then, so nobody can downgrade the channel; the decrypted
  payload must name our app id, and the reply is encrypted the same way.
- The answer is a passive text reply when the core has one within 4 s, else `success`
  (`bot.wechat_inbound`). Bad input gets a 4xx, a log line saying why, and nothing is run.
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

from bot.core_pool import CoreProcess
from bot.settings import Settings
from bot.wechat_inbound import DEADLINE, Responder
from bot.wechat_xml import (
    Rejected,
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

log = logging.getLogger("mianzi.wechat")

SUCCESS = "success"


class OfficialAccount:
    def __init__(self, settings: Settings, engine: Engine, deadline: float = DEADLINE,
                 core: CoreProcess | None = None) -> None:
        if not settings.wechat_token or not settings.wechat_app_id:
            raise ValueError("MIANZI_WECHAT_TOKEN and MIANZI_WECHAT_APP_ID are required for /wechat/callback")
        self.token = settings.wechat_token
        self.app_id = settings.wechat_app_id
        self.crypto = (make_crypto(WeChatCrypto, self.token, settings.wechat_aes_key, self.app_id,
                                   "MIANZI_WECHAT_AES_KEY") if settings.wechat_aes_key else None)
        self.responder = Responder(engine, settings, "wechat", deadline=deadline, core=core)

    def _signed(self, request: Request) -> None:
        q = request.query_params
        if not signature_ok(q.get("signature"), self.token, q.get("timestamp"), q.get("nonce")):
            raise Rejected(403, "wrong or missing signature")

    async def verify(self, request: Request) -> Response:
        try:
            self._signed(request)
        except Rejected as exc:
            log.warning("wechat: URL check refused (%s) from %s", exc.reason, client(request))
            return PlainTextResponse("forbidden", status_code=exc.status)
        return PlainTextResponse(request.query_params.get("echostr", ""))

    async def receive(self, request: Request) -> Response:
        try:
            self._signed(request)
            fields = parse_xml(await read_body(request))
            if self.crypto is not None:
                fields = self._decrypted(request, fields)
            msg = inbound(fields)
        except Rejected as exc:
            log.warning("wechat: callback refused with %s: %s (from %s)", exc.status, exc.reason, client(request))
            return PlainTextResponse("bad request" if exc.status != 403 else "forbidden", status_code=exc.status)
        text = await self.responder.reply(msg)
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
                  core: CoreProcess | None = None) -> list[Route]:
    """The Official Account callback routes (empty when the account is not configured)."""
    if not settings.wechat_token or not settings.wechat_app_id:
        return []
    account = OfficialAccount(settings, engine, deadline, core)
    return [Route("/wechat/callback", account.verify, methods=["GET"]),
            Route("/wechat/callback", account.receive, methods=["POST"])]
