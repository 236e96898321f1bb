"""`GET/POST /wecom/callback`: a WeCom (企业微信) self-built app.

WeCom callbacks are always encrypted (wechatpy's `wechatpy.enterprise.crypto`, the receive id
being the corp id):
- `GET` with `msg_signature, timestamp, nonce, echostr`: the URL check; `msg_signature` covers
  the encrypted `echostr`, and the answer is its decrypted plaintext.
- `POST`: `msg_signature` over the `<Encrypt>` field, decrypted payload addressed to our corp
  id, and an `AgentID` equal to ours (a corp with several apps must not have one app's messages
  run by another); then the same core as the Official Account, and an encrypted passive reply.
  No reply is an empty 200 answer.
- Both: a `timestamp` within `MIANZI_WECHAT_MAX_AGE_SECONDS` of now, and a POST's (timestamp,
  nonce) used for one message only (`bot.core.dedupe.Nonce`), as for the Official Account.
"""

from __future__ import annotations

import logging
import time

from sqlalchemy import Engine
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route
from wechatpy.enterprise.crypto import PrpCrypto, WeChatCrypto
from wechatpy.enterprise.exceptions import InvalidCorpIdException

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

log = logging.getLogger("mianzi.wecom")

class WeComApp:
    def __init__(self, settings: Settings, engine: Engine, deadline: float = DEADLINE,
                 core: Runner | None = None) -> None:
        if not settings.receives("wecom"):
            raise ValueError("MIANZI_WECOM_CORP_ID, _AGENT_ID, _TOKEN and _AES_KEY are required for /wecom/callback")
        self.token = str(settings.wecom_token)
        self.corp_id = str(settings.wecom_corp_id)
        self.agent_id = str(settings.wecom_agent_id)
        self.max_age = settings.wechat_max_age_seconds
        self.crypto = make_crypto(WeChatCrypto, self.token, str(settings.wecom_aes_key), self.corp_id,
                                  "MIANZI_WECOM_AES_KEY")
        self.responder = Responder(engine, settings, "wecom", deadline=deadline, core=core)

    def _open(self, request: Request, encrypted: str | None) -> str:
        q = request.query_params
        if not encrypted:
            raise Rejected(400, "nothing encrypted in the request")
        if not signature_ok(q.get("msg_signature"), self.token, q.get("timestamp"), q.get("nonce"), encrypted):
            raise Rejected(403, "wrong or missing msg_signature")
        check_fresh(q.get("timestamp"), self.max_age)
        return decrypt(self.crypto.key, encrypted, self.corp_id, PrpCrypto, InvalidCorpIdException)

    async def verify(self, request: Request) -> Response:
        try:
            echo = self._open(request, request.query_params.get("echostr"))
        except Rejected as exc:
            log.warning("wecom: URL check refused with %s: %s (from %s)", exc.status, exc.reason, client(request))
            return PlainTextResponse("refused", status_code=exc.status)
        return PlainTextResponse(echo)

    async def receive(self, request: Request) -> Response:
        try:
            outer = parse_xml(await read_body(request))
            msg = inbound(parse_xml(self._open(request, outer.get("Encrypt"))))
            if msg.agent_id is not None and msg.agent_id != self.agent_id:
                raise Rejected(403, f"message for agent {msg.agent_id}, we are agent {self.agent_id}")
            q = request.query_params
            text = await self.responder.reply(msg, Nonce.of(str(q.get("timestamp")), str(q.get("nonce")),
                                                            self.max_age))
        except Rejected as exc:
            log.warning("wecom: callback refused with %s: %s (from %s)", exc.status, exc.reason, client(request))
            return PlainTextResponse("refused", status_code=exc.status)
        if text is None:
            return PlainTextResponse("")
        xml = text_reply(msg.from_user, msg.to_user, text)
        return Response(self.crypto.encrypt_message(xml, new_nonce(), str(int(time.time()))),
                        media_type="application/xml")


def wecom_routes(settings: Settings, engine: Engine, *, deadline: float = DEADLINE,
                 core: Runner | None = None) -> list[Route]:
    """The WeCom callback routes (empty when the app is not configured)."""
    if not settings.receives("wecom"):
        return []
    app = WeComApp(settings, engine, deadline, core)
    return [Route("/wecom/callback", app.verify, methods=["GET"]),
            Route("/wecom/callback", app.receive, methods=["POST"])]
