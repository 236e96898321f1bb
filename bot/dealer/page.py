"""The dealer's page itself: the first view, the what-if calculator, the certificates.

Every URL answers for the signed-in dealer only and takes no partner from the request: the
calculator names a contest (and answers only for one the dealer takes part in), a certificate is
looked up by contest under the dealer's own id. Changing a URL shows nobody else's line.
"""

from __future__ import annotations

from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Route

from bot.dealer.site import Site
from handlers import dealer_page
from handlers.announcements import certificate_path
from messages import render
from models.prospects import COUNT
from models.values import utcnow
from models.web_sessions import SignedIn

MAX_AMOUNT = 10**12  # fen (¥10 billion) or units: beyond any sale, and within every integer column


def routes(site: Site) -> list[Route]:
    pages, media_dir = site.pages, Path(site.settings.media_dir)

    async def signed_out(request: Request) -> Response:
        """The page before a session: its script signs in by Telegram's initData or sends a WeChat
        browser through OAuth; without either it says where to open the page from. The live
        refresh of an open page whose session ended gets 401, not this page inside the old one."""
        if request.query_params.get("part"):
            return Response(status_code=401, headers={"Cache-Control": "no-store"})
        return pages.render(request, "signin.html", locale=None,
                            telegram=bool(site.settings.telegram_token),
                            wechat=site.settings.sends("wechat") and bool(site.settings.public_url),
                            wecom=site.settings.sends("wecom") and bool(site.settings.public_url),
                            bot=site.settings.telegram_bot_username)

    async def home(request: Request, dealer: SignedIn) -> Response:
        now = utcnow()
        data = await site.run(lambda s: dealer_page.page(s, partner_id=dealer.partner_id, now=now, media_dir=media_dir))
        if data is None:
            return pages.message(request, "gone", status=404, locale=dealer.locale)
        version = await site.run(dealer_page.standings_version)
        template = "main.html" if request.query_params.get("part") == "main" else "page.html"
        return pages.render(request, template, locale=dealer.locale, tz=site.settings.timezone, version=version,
                            count_unit=COUNT, **data)

    async def calc(request: Request, dealer: SignedIn) -> Response:
        contest, amount = request.query_params.get("contest", ""), request.query_params.get("amount", "")
        if not contest.isdigit() or not amount.isdigit() or int(amount) > MAX_AMOUNT:
            return JSONResponse({"error": "bad_request"}, status_code=400)
        now = utcnow()
        found = await site.run(lambda s: dealer_page.calculate(s, partner_id=dealer.partner_id,
                                                               contest_id=int(contest), added=int(amount), now=now))
        if found is None:
            return JSONResponse({"error": "not_found"}, status_code=404)
        lang = pages.locale(dealer.locale)
        key = "result_unranked" if found["rank"] is None else "result_tier" if found["tier"] else "result"
        text = render.t("dealer.whatif." + key, lang, rank=found["rank"], tier=found["tier"])
        return JSONResponse({**found, "text": text}, headers={"Cache-Control": "no-store"})

    async def certificate(request: Request, dealer: SignedIn) -> Response:
        ident = request.path_params["contest_id"]
        path = certificate_path(media_dir, int(ident), dealer.partner_id)
        if not path.is_file():
            return Response(status_code=404)
        return FileResponse(path, media_type="image/png", headers={"Cache-Control": "private, max-age=3600"})

    access = site.access
    return [Route("/", access.page(home, signed_out), methods=["GET"]),
            Route("/api/calc", access.page(calc), methods=["GET"]),
            Route("/certificate/{contest_id:int}.png", access.page(certificate), methods=["GET"])]
