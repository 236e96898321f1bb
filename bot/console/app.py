"""The console as one Starlette mount at `/admin` (composed into `mianzi serve` by `bot/web/app.py`)."""

from __future__ import annotations

import logging
from pathlib import Path

from sqlalchemy import Engine
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount
from starlette.staticfiles import StaticFiles

from bot.console import MOUNT, audit, broadcasts, contests, dashboard, imports, partners, signin, store, trainings
from bot.console.access import Access
from bot.console.pages import Pages
from bot.console.site import Site
from bot.settings import Settings
from bot.web.session import WebSessions
from handlers.import_jobs import ImportJobs
from models.kinds import WebKind

log = logging.getLogger("mianzi.console")
STATIC = Path(__file__).parent / "static"


def console_mount(settings: Settings, engine: Engine, jobs: ImportJobs) -> Mount:
    """The console's routes under /admin; `jobs` runs its imports (the app closes it at shutdown)."""
    pages = Pages(default_locale=settings.locale, timezone=settings.timezone, public_url=settings.public_url)
    sessions = WebSessions(settings, engine, kind=WebKind.CONSOLE, path=MOUNT)
    access = Access(sessions, pages, max_upload_bytes=settings.upload_max_mb * 1024 * 1024)
    site = Site(settings, engine, pages, sessions, access)

    async def http_error(request: Request, exc: Exception) -> Response:
        """No such page (404), or not this method (405): the router raises, the page explains."""
        status = exc.status_code if isinstance(exc, HTTPException) else 500
        key = {404: "not_found", 405: "method"}.get(status, "bad_request")  # 400: a body that is no form
        return pages.message(request, key, status=status)

    async def server_error(request: Request, exc: Exception) -> Response:
        log.exception("console page failed: %s %s", request.method, request.url.path, exc_info=exc)
        return pages.message(request, "error", status=500)

    routes: list[BaseRoute] = [
        *signin.routes(site), *dashboard.routes(site), *partners.routes(site), *imports.routes(site, jobs),
        *audit.routes(site),
        *broadcasts.routes(site), *store.routes(site), *trainings.routes(site),
        *contests.routes(site),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    app = Starlette(routes=routes, exception_handlers={HTTPException: http_error, Exception: server_error})
    return Mount(MOUNT, app=app)
