"""The dashboard: the program at a glance (`models.dashboard`'s figures, in one read)."""

from __future__ import annotations

import json
from typing import Any

from sqlmodel import Session
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bot.console.site import Site
from handlers.refresh import refresh_dirty
from models import dashboard
from models.values import utcnow
from models.web_sessions import SignedIn

CHANNELS = ("telegram", "wechat", "wecom")


def routes(site: Site) -> list[Route]:
    settings = site.settings
    sending = tuple(p for p in CHANNELS if settings.sends(p))

    def read(session: Session) -> dict[str, Any]:
        now = utcnow()
        tz = settings.timezone
        refresh_dirty(session, now)  # as the chat's board does: what an import changed shows at once
        return {"contests": dashboard.contest_figures(session, now=now),
                "partners": dashboard.partner_figures(session, now=now),
                "points": dashboard.points_figures(session, now=now, timezone=tz),
                "deliveries": (deliveries := dashboard.delivery_figures(session, now=now, channels=sending)),
                "sales": dashboard.sales_figures(session, now=now, timezone=tz),
                "alerts": dashboard.warnings(session, now=now, channels=sending, deliveries=deliveries,
                                             wechat_official_account=settings.sends("wechat"),
                                             wechat_template=bool(settings.wechat_template_id))}

    async def overview(request: Request, admin: SignedIn) -> Response:
        found = await site.run(read)
        sales = found["sales"]
        chart = {"days": [d.day.strftime("%m-%d") for d in sales.days],
                 "yuan": [round(d.amount_fen / 100, 2) for d in sales.days], "units": [d.units for d in sales.days]}
        return site.pages.render(request, "dashboard.html", admin=admin, **found, chart=json.dumps(chart),
                                 public_url_set=bool(settings.public_url))

    return [Route("/", site.access.page(overview), methods=["GET"])]
