"""The dealer page as one Starlette mount at `/me` (composed into `mianzi serve` by `bot/web/app.py`)."""

from __future__ import annotations

import logging

from sqlalchemy import Engine
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount

from bot.dealer import MOUNT, live, page, signin
from bot.dealer.access import Access
from bot.dealer.pages import Pages
from bot.dealer.site import Site
from bot.settings import Settings
from bot.web.session import WebSessions
from models.kinds import WebKind

log = logging.getLogger("mianzi.dealer")


def dealer_mount(settings: Settings, engine: Engine, *, poll: float = live.POLL) -> Mount:
    pages = Pages(default_locale=settings.locale, timezone=settings.timezone)
    sessions = WebSessions(settings, engine, kind=WebKind.DEALER, path=MOUNT)
    site = Site(settings, engine, pages, sessions, Access(sessions, pages))

    async def http_error(request: Request, exc: Exception) -> Response:
        status = exc.status_code if isinstance(exc, HTTPException) else 500
        return pages.message(request, "not_found" if status == 404 else "method", status=status)

    async def server_error(request: Request, exc: Exception) -> Response:
        log.exception("dealer page failed: %s %s", request.method, request.url.path, exc_info=exc)
        return pages.message(request, "error", status=500)

    routes: list[BaseRoute] = [*page.routes(site), *signin.routes(site), *live.routes(site, poll=poll)]
    app = Starlette(routes=routes, exception_handlers={HTTPException: http_error, Exception: server_error})
    return Mount(MOUNT, app=app)
