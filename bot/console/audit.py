"""The audit log's page: every console action, newest first, paged."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bot.console.paging import Paging
from bot.console.site import Site
from models import audit
from models.web_sessions import SignedIn


def routes(site: Site) -> list[Route]:
    async def audit_page(request: Request, admin: SignedIn) -> Response:
        paging = Paging.of(request)
        lines, total = await site.run(lambda s: audit.page(s, offset=paging.offset, limit=paging.size))
        return site.pages.render(request, "audit.html", admin=admin, lines=lines, pager=paging.pager(total, request))

    return [Route("/audit", site.access.page(audit_page), methods=["GET"])]
