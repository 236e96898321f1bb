"""Signing in to the dealer page, by the platform's word for a bound chat account — no password.

- **Telegram Mini App**: the page's own script reads `#tgWebAppData=…` from the URL fragment and
  POSTs it to `/me/telegram`; the server checks it (`bot.dealer.telegram_auth`) and signs in the
  partner bound to that Telegram user.
- **WeChat Official Account** (`snsapi_base`, silent): `/me/wechat` puts a random `state` in a
  short-lived cookie and sends the browser to WeChat's authorize URL; WeChat sends it back to
  `/me/wechat/callback?code=…&state=…`. The state must match the cookie and is claimed once (a
  replayed callback is refused); the code is exchanged server-side (wechatpy) for the OpenID.
- **WeCom**: the same with WeCom's OAuth (`get_user_info`, the UserID).

A visitor whose account is bound to nobody sees how to bind, nothing else.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import time
from collections.abc import Awaitable, Callable

import httpx
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from bot.channels.wechat.access_token import ApiError, wecom_api
from bot.dealer import MOUNT, oauth, telegram_auth
from bot.dealer.site import Site
from messages.locales import locale_for
from models import identities, inbound_seen, partners
from models.db import session_scope
from models.kinds import Platform
from models.tables import Partner
from models.values import utcnow

log = logging.getLogger("mianzi.dealer")

STATE_COOKIE = "mianzi_oauth_state"
STATE_TTL = 600  # seconds from the entry link to WeChat's redirect back
STATE_CLAIMS = "oauth_state"  # the platform name of the states' claims in `InboundSeen`


def bound_partner(platform: str, user_ref: str) -> Callable[[Session], Partner | None]:
    def find(session: Session) -> Partner | None:
        identity = identities.active_identity(session, platform=platform, user_ref=user_ref)
        return partners.partner_by_id(session, partner_id=identity.partner_id) if identity is not None else None

    return find


def routes(site: Site) -> list[Route]:
    settings, pages = site.settings, site.pages

    async def signed_in(request: Request, platform: str, user_ref: str, hint: str | None) -> Response:
        partner, cookie = await run_in_threadpool(site.sessions.open_for, bound_partner(platform, user_ref))
        if cookie is None:
            locale = partner.locale if partner is not None else locale_for(hint, settings.locale)
            return pages.render(request, "unbound.html", locale=locale, status=403, platform=platform,
                                inactive=partner is not None)
        response = RedirectResponse(f"{MOUNT}/", status_code=303)
        site.sessions.set_cookie(response, cookie)
        response.delete_cookie(STATE_COOKIE, path=MOUNT)
        return response

    async def telegram(request: Request) -> Response:
        if not settings.telegram_token:
            return pages.message(request, "off", status=404)
        origin = request.headers.get("origin")
        if origin is not None and origin != f"{request.url.scheme}://{request.url.netloc}" and \
                not (settings.public_url and origin == settings.public_url.rstrip("/")):
            return pages.message(request, "bad_signin", status=403)  # another site posting someone's initData
        size = request.headers.get("content-length", "")
        if not size.isdigit() or int(size) > 2 * telegram_auth.MAX_INIT_DATA:
            return pages.message(request, "bad_signin", status=400)
        form = await request.form(max_files=0, max_fields=5)
        given = form.get("init_data")
        try:
            user = telegram_auth.check(given if isinstance(given, str) else "", bot_token=settings.telegram_token,
                                       max_age=settings.webapp_max_age_seconds, now=time.time())
        except telegram_auth.InitDataRefused as exc:
            log.info("Mini App sign-in refused: %s", exc.refusal)
            key = "stale" if exc.refusal == telegram_auth.Refusal.STALE else "bad_signin"
            return pages.message(request, key, status=403)
        return await signed_in(request, Platform.TELEGRAM, user.user_id, user.language_code)

    def callback_url(platform: str) -> str | None:
        return settings.public_link(f"me/{platform}/callback")

    def start(platform: str, authorize: Callable[[str, str], str]) -> Callable[[Request], Awaitable[Response]]:
        async def begin(request: Request) -> Response:
            redirect = callback_url(platform)
            if redirect is None or not settings.sends(platform):
                return pages.message(request, "off", status=404)
            state = secrets.token_urlsafe(24)
            response = RedirectResponse(authorize(redirect, state), status_code=302)
            response.set_cookie(STATE_COOKIE, state, max_age=STATE_TTL, path=MOUNT, httponly=True, samesite="lax",
                                secure=site.sessions.secure)
            response.headers["Cache-Control"] = "no-store"
            return response

        return begin

    def claim_state(request: Request) -> bool:
        """The callback's state is the one this browser was given, and has not been used before."""
        given, expected = request.query_params.get("state", ""), request.cookies.get(STATE_COOKIE, "")
        if not given or not expected or not secrets.compare_digest(given.encode(), expected.encode()):
            return False
        key = hashlib.sha256(given.encode()).hexdigest()
        with session_scope(site.engine) as session:
            return inbound_seen.claim(session.connection(), platform=STATE_CLAIMS, key=key, seen_at=utcnow())

    async def returned_code(request: Request, platform: str) -> str | Response:
        """The OAuth code the app sent the dealer back with, or the page that refuses the return:
        the app not set up here, a state not ours (or used before), no code."""
        if callback_url(platform) is None or not settings.sends(platform):
            return pages.message(request, "off", status=404)
        if not await run_in_threadpool(claim_state, request):
            return pages.message(request, "bad_state", status=403)
        code = request.query_params.get("code", "")
        return code or pages.message(request, "bad_signin", status=403)

    async def wechat_back(request: Request) -> Response:
        code, redirect = await returned_code(request, "wechat"), callback_url("wechat")
        if isinstance(code, Response):
            return code
        assert redirect is not None  # without a public URL returned_code answered "off"
        try:
            openid = await run_in_threadpool(lambda: oauth.wechat_openid(settings, code=code, redirect_uri=redirect))
        except oauth.CodeRefused as exc:
            log.info("WeChat OAuth code refused: %s", exc)
            return pages.message(request, "bad_signin", status=403)
        return await signed_in(request, Platform.WECHAT, openid, None)

    async def wecom_back(request: Request) -> Response:
        code = await returned_code(request, "wecom")
        if isinstance(code, Response):
            return code
        api = wecom_api(settings, site.engine, connections=1)  # the pushes' shared token (a sign-in is rare)
        try:
            token = await api.token()
            user = await run_in_threadpool(lambda: oauth.wecom_userid(settings, code=code, access_token=token))
        except (oauth.CodeRefused, ApiError, httpx.HTTPError) as exc:
            log.info("WeCom OAuth code refused: %s", exc)
            return pages.message(request, "bad_signin", status=403)
        finally:
            await api.close()
        return await signed_in(request, Platform.WECOM, user, None)

    wechat_start = start("wechat", lambda uri, state: oauth.wechat_authorize_url(settings, redirect_uri=uri,
                                                                                 state=state))
    wecom_start = start("wecom", lambda uri, state: oauth.wecom_authorize_url(settings, redirect_uri=uri,
                                                                              state=state))
    return [Route("/telegram", telegram, methods=["POST"]),
            Route("/wechat", wechat_start, methods=["GET"]), Route("/wechat/callback", wechat_back, methods=["GET"]),
            Route("/wecom", wecom_start, methods=["GET"]), Route("/wecom/callback", wecom_back, methods=["GET"])]
