"""The anchors the benchmarks measure Mianzi against, in the same run on the same machine.

Each is the smallest honest server doing the platform's part of the job with the library Mianzi
itself builds on, and nothing of Mianzi:

- `ptb_app`: a bare python-telegram-bot 22 bot, as its documentation writes one for a custom
  webhook server: a Starlette route that hands each update to `Application.process_update`, and a
  `/rank` `CommandHandler` that answers with `reply_text` (PTB's default HTTP client, httpx).
- `wechat_app`: a bare wechatpy echo server: a Starlette route that checks the signature, parses
  the XML (decrypts it in safe mode with wechatpy's `WeChatCrypto`) and answers a passive text
  reply (encrypted in safe mode).
- `page_app`: a bare Starlette page: one GET route rendering a small jinja2 page (a table of 50
  rows, from a template compiled once), no session, no database — the floor of the console's pages.

The benchmarks start them (`python bench/anchors.py ptb|wechat --port P …`) beside Mianzi's server.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

REPLY = "🏆 本月销售冠军 排行\n🥇 伙伴1 ¥99,999.00\n🥈 伙伴2 ¥99,998.00\n🥉 伙伴3 ¥99,997.00\n您：第 42 名"


def ptb_app(token: str, api_url: str) -> Starlette:
    """PTB's own path: `Update.de_json` → `process_update` → `CommandHandler` → `reply_text`."""
    from telegram import Update
    from telegram.ext import Application, CommandHandler, ContextTypes

    ptb = Application.builder().token(token).base_url(api_url).updater(None).build()

    async def rank(update: Update, _context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.message is not None
        await update.message.reply_text(REPLY)

    ptb.add_handler(CommandHandler("rank", rank))

    async def webhook(request: Request) -> Response:
        await ptb.process_update(Update.de_json(await request.json(), ptb.bot))
        return Response()

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        async with ptb:
            await ptb.start()
            yield
            await ptb.stop()

    return Starlette(routes=[Route("/telegram/webhook", webhook, methods=["POST"])], lifespan=lifespan)


def wechat_app(token: str, app_id: str, aes_key: str | None) -> Starlette:
    """wechatpy's own path: `check_signature` (and `WeChatCrypto.decrypt_message` in safe mode),
    `parse_message`, `TextReply(...).render()` (encrypted again in safe mode)."""
    from wechatpy import parse_message
    from wechatpy.crypto import WeChatCrypto
    from wechatpy.exceptions import InvalidSignatureException
    from wechatpy.replies import TextReply
    from wechatpy.utils import check_signature

    crypto = WeChatCrypto(token, aes_key, app_id) if aes_key else None

    async def callback(request: Request) -> Response:
        q = request.query_params
        body = await request.body()
        try:
            check_signature(token, q.get("signature", ""), q.get("timestamp", ""), q.get("nonce", ""))
            if crypto is not None:
                body = crypto.decrypt_message(body, q.get("msg_signature", ""), q.get("timestamp", ""),
                                              q.get("nonce", ""))
        except InvalidSignatureException:
            return Response(status_code=403)
        xml = TextReply(content=REPLY, message=parse_message(body)).render()
        if crypto is not None:
            xml = crypto.encrypt_message(xml, q.get("nonce", ""), q.get("timestamp", ""))
        return Response(xml, media_type="application/xml")

    return Starlette(routes=[Route("/wechat/callback", callback, methods=["POST"])])


PAGE = """<!doctype html><html lang="zh"><head><meta charset="utf-8"><title>{{ title }}</title></head>
<body><h1>{{ title }}</h1><table>{% for r in rows %}<tr><td>{{ r.code }}</td><td>{{ r.name }}</td>
<td>{{ r.team }}</td><td>{{ r.region }}</td></tr>{% endfor %}</table></body></html>"""


def page_app() -> Starlette:
    """A jinja2 page of 50 rows from one Starlette route: what any server-rendered page costs."""
    from jinja2 import Environment
    from starlette.responses import HTMLResponse

    template = Environment(autoescape=True).from_string(PAGE)
    rows = [{"code": f"P{i:06d}", "name": f"伙伴{i:06d}", "team": f"T{i % 40:04d}", "region": "华东"}
            for i in range(1, 51)]

    async def page(_request: Request) -> Response:
        return HTMLResponse(template.render(title="伙伴", rows=rows))

    return Starlette(routes=[Route("/", page, methods=["GET"])])


def main() -> None:
    import uvicorn

    p = argparse.ArgumentParser(description="Serve one benchmark anchor on 127.0.0.1.")
    p.add_argument("kind", choices=("ptb", "wechat", "page"))
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--token", default="1:BENCH")
    p.add_argument("--api-url", default="")
    p.add_argument("--app-id", default="")
    p.add_argument("--aes-key")
    a = p.parse_args()
    logging.basicConfig(level=logging.WARNING)
    if a.kind == "page":
        app = page_app()
    else:
        app = ptb_app(a.token, a.api_url) if a.kind == "ptb" else wechat_app(a.token, a.app_id, a.aes_key)
    uvicorn.run(app, host="127.0.0.1", port=a.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
