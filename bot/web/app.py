"""The ASGI app of `mianzi serve` (DESIGN §4 routes): health, channel webhooks, the ingestion API.

Routes exist only for what is configured: without `MIANZI_TELEGRAM_TOKEN` there is no Telegram
route, without `MIANZI_API_TOKEN` no `/api/sales` (404, not 401: nothing to guess at). In long
polling mode the webhook route is absent too, so nobody can post updates in a user's name.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

from bot import context
from bot.channels.telegram.channel import TelegramChannel
from bot.channels.wechat.official_account import wechat_routes
from bot.channels.wechat.wecom import wecom_routes
from bot.console.app import console_mount
from bot.console.board import board_routes
from bot.core.runner import CoreProcess, Runner, ThreadRunner, freeze_heap
from bot.dealer.app import dealer_mount
from bot.settings import Settings, get_settings
from bot.web.background import Background
from bot.web.health import DatabaseHealth
from bot.web.sales_api import SalesApi
from handlers.import_jobs import ImportJobs

log = logging.getLogger("mianzi.app")

HEALTH_TIMEOUT = 5.0
HEALTHY = ("ok", "busy")  # busy: SQLite's write lock is held (an import); writes wait, nothing is broken


def create_app(settings: Settings | None = None, *, background: bool = True) -> Starlette:
    """The app; with `background` (the default, as in `mianzi serve`) it also runs the delivery
    worker and the scheduler for as long as it serves."""
    settings = settings or get_settings()
    engine = context.engine(settings)
    # Where every channel's chat answers run (one writer on SQLite): the core process, or a thread
    core: Runner = CoreProcess(settings.database_url) if settings.core_process_on() else ThreadRunner(engine)
    telegram = TelegramChannel(settings, core) if settings.receives("telegram") else None
    api = SalesApi(settings) if settings.api_token else None
    services = Background(settings, engine) if background else None
    health = DatabaseHealth(lambda: context.engine(settings), timeout=HEALTH_TIMEOUT)

    async def healthz(_request: Request) -> JSONResponse:
        """503 unless the database can be written (`bot.web.health`): read-only, full, unreachable."""
        database = await health.state()
        return JSONResponse({"database": database, "channels": channels,
                             "scheduler": bool(services and services.scheduler_running()),
                             "scheduler_leader": bool(services and services.scheduler_leading()),
                             "delivery": bool(services and services.delivering()),
                             "delivering_for": services.delivering_for() if services else []},
                            status_code=200 if database in HEALTHY else 503)

    routes: list[BaseRoute] = [Route("/healthz", healthz, methods=["GET"])]
    if telegram is not None and telegram.webhook_mode:
        routes.append(Route("/telegram/webhook", telegram.webhook, methods=["POST"]))
    if api is not None:
        routes.append(Route("/api/sales", api.post_sales, methods=["POST"]))
    wechat, wecom = wechat_routes(settings, engine, core=core), wecom_routes(settings, engine, core=core)
    routes += wechat + wecom
    jobs = ImportJobs(engine, media_dir=settings.media_dir, timezone=settings.timezone, default_locale=settings.locale)
    routes.append(console_mount(settings, engine, jobs))
    routes.append(dealer_mount(settings, engine))
    routes += board_routes(settings, engine)  # the meeting-room board: outside /admin, no cookie
    channels = {"telegram": telegram is not None, "wechat": bool(wechat), "wecom": bool(wecom)}

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        await asyncio.to_thread(context.engine, settings)  # create or migrate the schema before serving
        await core.start()  # a core process is spawned now, so that the first message does not wait for it
        try:
            if telegram is not None:
                await telegram.start()
            if services is not None:
                await services.start()
            freeze_heap()
            try:
                yield
            finally:
                if services is not None:
                    await services.stop()
                if telegram is not None:
                    await telegram.stop()
        finally:
            await asyncio.to_thread(jobs.close)  # a running import finishes (or rolls back) before we go
            await asyncio.to_thread(core.stop)

    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.settings = settings
    app.state.telegram = telegram
    app.state.channels = channels  # what /healthz reports and `mianzi serve` names at start-up
    return app
