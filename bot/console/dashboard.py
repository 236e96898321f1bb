"""The dashboard: the program at a glance (`models.dashboard`'s figures, its blocks read side by side)."""

from __future__ import annotations

import asyncio
import json
from datetime import date, datetime
from typing import Any

from sqlmodel import Session
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bot.console.site import Site
from handlers.refresh import refresh_dirty
from models import dashboard
from models.values import utcnow, zone
from models.web_sessions import SignedIn

CHANNELS = ("telegram", "wechat", "wecom")


def routes(site: Site) -> list[Route]:
    settings = site.settings
    sending = tuple(p for p in CHANNELS if settings.sends(p))

    def deliveries_and_alerts(session: Session, now: datetime) -> tuple[Any, Any]:
        deliveries = dashboard.delivery_figures(session, now=now, channels=sending)
        return deliveries, dashboard.warnings(session, now=now, channels=sending,  # the same pushes, read once
                                              wechat_official_account=settings.sends("wechat"),
                                              wechat_template=bool(settings.wechat_template_id),
                                              deliveries=deliveries)

    remembered: list[tuple[tuple[int, date], dashboard.SalesFigures]] = []

    def month_sales(session: Session, now: datetime) -> dashboard.SalesFigures:
        """The month's sales (the dearest block: a sum over every sale of the month), read again only
        when a sale was added or the day changed (`dashboard.sales_version`)."""
        key = (dashboard.sales_version(session), now.astimezone(zone(settings.timezone)).date())
        if remembered and remembered[0][0] == key:
            return remembered[0][1]
        figures = dashboard.sales_figures(session, now=now, timezone=settings.timezone)
        remembered[:] = [(key, figures)]
        return figures

    async def read() -> dict[str, Any]:
        """The blocks at one `now`, after the refresh (as the chat's board does: what an import changed
        shows at once): each block in its own worker thread and session, at the same time. SQLite and
        PostgreSQL work outside the interpreter lock, so the two heaviest (the month's sales, the
        partners) take a core each: the page waits for the slowest block, not for their sum."""
        now = utcnow()
        tz = settings.timezone
        await site.run(lambda session: refresh_dirty(session, now))
        contests, partners, points, (deliveries, alerts), sales = await asyncio.gather(
            site.run(lambda session: dashboard.contest_figures(session, now=now)),
            site.run(lambda session: dashboard.partner_figures(session, now=now)),
            site.run(lambda session: dashboard.points_figures(session, now=now, timezone=tz)),
            site.run(lambda session: deliveries_and_alerts(session, now)),
            site.run(lambda session: month_sales(session, now)))
        return {"contests": contests, "partners": partners, "points": points, "deliveries": deliveries,
                "sales": sales, "alerts": alerts}

    async def overview(request: Request, admin: SignedIn) -> Response:
        found = await read()
        sales = found["sales"]
        chart = {"days": [d.day.strftime("%m-%d") for d in sales.days],
                 "yuan": [round(d.amount_fen / 100, 2) for d in sales.days], "units": [d.units for d in sales.days]}
        return site.pages.render(request, "dashboard.html", admin=admin, **found, chart=json.dumps(chart),
                                 public_url_set=bool(settings.public_url))

    return [Route("/", site.access.page(overview), methods=["GET"])]
