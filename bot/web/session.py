"""The session cookie of the web pages (the admin console; the dealer page uses it too).

One mechanism for every kind of page: `WebSessions(settings, engine, kind=…)` reads the cookie of
a request into the signed-in partner (`models.web_sessions.SignedIn`), opens a session from a
one-time link, and signs out. The cookie holds a random token (the database keeps its hash); it is
HttpOnly, SameSite=Lax, limited to the pages' path, and Secure when `MIANZI_PUBLIC_URL` is https.
It is a browser-session cookie: the server ends a session after its idle time
(`MIANZI_SESSION_IDLE_HOURS`), whatever the browser keeps.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError
from sqlmodel import Session
from starlette.requests import Request
from starlette.responses import Response

from bot.settings import Settings
from models import audit, web_sessions
from models.db import session_scope, writer_wait
from models.tables import Partner
from models.values import utcnow
from models.web_sessions import LinkCheck, SignedIn

log = logging.getLogger("mianzi.web")
TOUCH_WAIT_MS = 200  # how long a page view waits to write its session's last-seen time


class WebSessions:
    """Sessions of one kind of page, under one cookie name and path. Every method is blocking (the
    database): call them from a thread (`starlette.concurrency.run_in_threadpool`)."""

    def __init__(self, settings: Settings, engine: Engine, *, kind: str, path: str) -> None:
        self.engine = engine
        self.kind = kind
        self.path = path
        self.cookie = f"mianzi_{kind}"
        self.idle = timedelta(hours=settings.session_idle_hours)
        self.secure = (settings.public_url or "").lower().startswith("https://")

    def token(self, request: Request) -> str | None:
        return request.cookies.get(self.cookie) or None

    def current(self, request: Request) -> SignedIn | None:
        """Who the request's cookie signs in, or None (no cookie, unknown, expired, signed out, no longer allowed)."""
        token = self.token(request)
        if token is None:
            return None
        now = utcnow()
        with session_scope(self.engine) as session:
            signed = web_sessions.signed_in(session, token=token, kind=self.kind, now=now, idle=self.idle, touch=False)
        if signed is not None:
            self._touch(signed.session_id, now)
        return signed

    def _touch(self, session_id: int, now: datetime) -> None:
        """The idle expiry moved on, unless the database is busy (an import holds SQLite's lock): a
        page view never waits for an import, and a minute later the next one tries again."""
        try:
            with self.engine.connect() as conn, writer_wait(conn, ms=TOUCH_WAIT_MS):
                web_sessions.touch_session(conn, session_id=session_id, now=now, idle=self.idle)
                conn.commit()
        except OperationalError as exc:
            log.info("session %s: last-seen time not written (%s)", session_id, str(exc.orig).splitlines()[0])

    def check_link(self, token: str) -> LinkCheck:
        with session_scope(self.engine) as session:
            return web_sessions.check_link(session, token=token, kind=self.kind, now=utcnow())

    def open(self, token: str, *, audit_action: str | None = None) -> tuple[LinkCheck, str | None]:
        """Use a one-time link: the new session's cookie token (set it with `set_cookie`), or None
        and why not. With `audit_action`, the sign-in is written to the audit log in the same transaction."""
        now = utcnow()
        with session_scope(self.engine) as session:
            check, cookie = web_sessions.redeem_link(session, token=token, kind=self.kind, now=now, idle=self.idle)
            if cookie is not None and audit_action is not None and check.partner is not None:
                audit.record(session, partner_id=check.partner.id, action=audit_action, now=now)
            return check, cookie

    def open_for(self, find: Callable[[Session], Partner | None]) -> tuple[Partner | None, str | None]:
        """Sign in whoever `find` names (a bound chat account's partner, as its platform vouches): the
        partner found and the new session's cookie token, or None when nobody was found or they may
        not use these pages."""
        with session_scope(self.engine) as session:
            partner = find(session)
            if partner is None or not web_sessions.allowed(partner, self.kind):
                return partner, None
            return partner, web_sessions.open_session(session, partner=partner, kind=self.kind, now=utcnow(),
                                                      idle=self.idle)

    def close(self, signed: SignedIn, *, audit_action: str | None = None) -> None:
        """Sign out: the session ends now (its cookie is then worth nothing), written to the audit log."""
        now = utcnow()
        with session_scope(self.engine) as session:
            web_sessions.sign_out(session, session_id=signed.session_id, now=now)
            if audit_action is not None:
                audit.record(session, partner_id=signed.partner_id, action=audit_action, now=now)

    def set_cookie(self, response: Response, token: str) -> None:
        response.set_cookie(self.cookie, token, path=self.path, httponly=True, samesite="lax", secure=self.secure)

    def clear_cookie(self, response: Response) -> None:
        response.delete_cookie(self.cookie, path=self.path, httponly=True, samesite="lax", secure=self.secure)
