"""The console as one Starlette mount at `/admin` (composed into `mianzi serve` by `bot/web/app.py`)."""

from __future__ import annotations

import logging
from pathlib import Path

from sqlalchemy import Engine
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from bot.console import MOUNT, audit, partners, signin
from bot.console.access import Access
from bot.console.pages import Pages
from bot.console.site import Site
from bot.settings import Settings
from bot.web.session import WebSessions
from models.kinds import WebKind

log = logging.getLogger("mianzi.console")
STATIC = Path(__file__).parent / "static"


def console_mount(settings: Settings, engine: Engine) -> Mount:
    pages = Pages(default_locale=settings.locale, timezone=settings.timezone, public_url=settings.public_url)
    sessions = WebSessions(settings, engine, kind=WebKind.CONSOLE, path=MOUNT)
    access = Access(sessions, pages, max_upload_bytes=settings.upload_max_mb * 1024 * 1024)
    site = Site(settings, engine, pages, sessions, access)

    async def not_found(request: Request) -> Response:
        return pages.message(request, "not_found", status=404)

    async def http_error(request: Request, exc: Exception) -> Response:
        status = exc.status_code if isinstance(exc, HTTPException) else 500
        return pages.message(request, "not_found" if status == 404 else "method", status=status)

    async def server_error(request: Request, exc: Exception) -> Response:
        log.exception("console page failed: %s %s", request.method, request.url.path, exc_info=exc)
        return pages.message(request, "error", status=500)

    routes: list[BaseRoute] = [
        *signin.routes(site), *partners.routes(site), *audit.routes(site),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
        Route("/{rest:path}", not_found, methods=["GET", "HEAD", "POST"]),
    ]
    app = Starlette(routes=routes, exception_handlers={HTTPException: http_error, Exception: server_error})
    return Mount(MOUNT, app=app)
