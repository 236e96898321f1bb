"""Signing in and out, and the language switch.

A sign-in link opens a page with one button; the POST of that button uses the link. Chat apps and
mail scanners open links to preview them: if a GET used the link, the preview would spend it and
the admin's own click would find it used.
"""

from __future__ import annotations

from sqlmodel import Session
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from bot.console import MOUNT
from bot.console.site import Site
from messages.locales import LOCALES
from models import audit, web_sessions
from models.partners import set_locale
from models.values import utcnow
from models.web_sessions import LinkOutcome, SignedIn

MINUTES = int(web_sessions.LINK_TTL.total_seconds() // 60)


def routes(site: Site) -> list[Route]:
    pages = site.pages

    def refused(request: Request, outcome: LinkOutcome) -> Response:
        status = {LinkOutcome.UNKNOWN: 404, LinkOutcome.EXPIRED: 410, LinkOutcome.USED: 410,
                  LinkOutcome.NOT_ALLOWED: 403}[outcome]
        return pages.message(request, outcome.value, status=status, signin_help=outcome != LinkOutcome.NOT_ALLOWED)

    async def signin_page(request: Request) -> Response:
        token = request.query_params.get("token", "")
        check = await run_in_threadpool(site.sessions.check_link, token) if token else None
        if check is None or check.outcome != LinkOutcome.OK or check.partner is None:
            return refused(request, check.outcome if check else LinkOutcome.UNKNOWN)
        return pages.render(request, "signin.html", admin=None, token=token, minutes=MINUTES,
                            name=check.partner.name, code=check.partner.code)

    async def signin(request: Request) -> Response:
        form = await request.form(max_files=0, max_fields=5)
        token = form.get("token")
        if not isinstance(token, str) or not token:
            return refused(request, LinkOutcome.UNKNOWN)
        check, cookie = await run_in_threadpool(lambda: site.sessions.open(token, audit_action="signin"))
        if cookie is None:
            return refused(request, check.outcome)
        response = RedirectResponse(f"{MOUNT}/", status_code=303)
        site.sessions.set_cookie(response, cookie)
        return response

    async def signout(request: Request, admin: SignedIn) -> Response:
        await run_in_threadpool(lambda: site.sessions.close(admin, audit_action="signout"))
        response = pages.render(request, "signed_out.html", admin=None, public_url_set=bool(site.settings.public_url),
                                just_left=True)
        site.sessions.clear_cookie(response)
        return response

    async def switch_locale(request: Request, admin: SignedIn) -> Response:
        form = await request.form()
        chosen = form.get("locale")
        back = form.get("back")
        if isinstance(chosen, str) and chosen in LOCALES and chosen != admin.locale:

            def change(session: Session) -> None:
                set_locale(session, partner_id=admin.partner_id, locale=chosen)
                audit.record(session, partner_id=admin.partner_id, action="locale", now=utcnow(),
                             object_kind="partner", object_ref=admin.code, details={"locale": chosen})

            await site.run(change)
        target = back if isinstance(back, str) and back.startswith(f"{MOUNT}/") else f"{MOUNT}/"
        return RedirectResponse(target, status_code=303)

    return [Route("/signin", signin_page, methods=["GET"]), Route("/signin", signin, methods=["POST"]),
            Route("/signout", site.access.page(signout), methods=["POST"]),
            Route("/locale", site.access.page(switch_locale), methods=["POST"])]
