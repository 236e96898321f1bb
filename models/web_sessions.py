"""Signing in to the web pages without passwords: one-time links and the sessions they open.

One mechanism for every kind of page (`WebKind`: the admin console, the dealer page): a link is
made for a partner and a kind, is valid for `LINK_TTL` and once, and opens a session of that kind
whose cookie carries a random token; the database keeps only SHA-256 hashes of both tokens. A
session ends when it has not been used for its idle time, or when its browser signs out.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import Connection, update
from sqlmodel import Session, col, select

from models.db import rowcount
from models.kinds import Role, WebKind
from models.tables import Partner, SignInLink, WebSession
from models.values import as_utc

LINK_TTL = timedelta(minutes=10)
# How stale `last_seen_at` may get before a request writes it again: a page view is then a read
# (no write per request on SQLite's one writer); the idle expiry is at most this much early.
TOUCH_EVERY = timedelta(minutes=1)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _new_token() -> str:
    return secrets.token_urlsafe(32)


class LinkOutcome(StrEnum):
    """What opening a sign-in link found (each but OK has its own page)."""

    OK = "ok"
    UNKNOWN = "unknown"  # no such link (mistyped, or made for another database)
    EXPIRED = "expired"
    USED = "used"
    NOT_ALLOWED = "not_allowed"  # the partner is no longer one who may open these pages (an admin for the console)


@dataclass(frozen=True)
class SignedIn:
    """Who a session belongs to, as the pages need it."""

    session_id: int
    partner_id: int
    code: str
    name: str
    role: str
    locale: str
    kind: str
    csrf_token: str


@dataclass(frozen=True)
class LinkCheck:
    outcome: LinkOutcome
    partner: Partner | None = None
    link_id: int | None = None


def allowed(partner: Partner, kind: str) -> bool:
    """Who may use the pages of `kind`: the console is for active admins, a dealer page for any active partner."""
    if not partner.active:
        return False
    return partner.role == Role.ADMIN if kind == WebKind.CONSOLE else True


def issue_link(session: Session, *, partner: Partner, kind: str, now: datetime, ttl: timedelta = LINK_TTL) -> str:
    """A new one-time sign-in token for `partner` (the caller builds the URL around it); only its hash is stored."""
    token = _new_token()
    session.add(SignInLink(token_hash=token_hash(token), partner_id=partner.id, kind=kind, created_at=now,
                           expires_at=now + ttl))
    session.flush()
    return token


def check_link(session: Session, *, token: str, kind: str, now: datetime) -> LinkCheck:
    """What the link with `token` would do, without using it (the page before the sign-in button)."""
    link = session.exec(select(SignInLink).where(col(SignInLink.token_hash) == token_hash(token),
                                                 col(SignInLink.kind) == kind)).first()
    if link is None:
        return LinkCheck(LinkOutcome.UNKNOWN)
    partner = session.get(Partner, link.partner_id)
    if link.used_at is not None:
        return LinkCheck(LinkOutcome.USED, partner, link.id)
    if as_utc(link.expires_at) <= now:
        return LinkCheck(LinkOutcome.EXPIRED, partner, link.id)
    if partner is None or not allowed(partner, kind):
        return LinkCheck(LinkOutcome.NOT_ALLOWED, partner, link.id)
    return LinkCheck(LinkOutcome.OK, partner, link.id)


def redeem_link(session: Session, *, token: str, kind: str, now: datetime, idle: timedelta
                ) -> tuple[LinkCheck, str | None]:
    """Use the link once: a new session's cookie token, or None and why not. Only the first of two
    concurrent uses wins (the link is marked used by a conditional UPDATE)."""
    check = check_link(session, token=token, kind=kind, now=now)
    if check.outcome != LinkOutcome.OK or check.partner is None:
        return check, None
    marked = session.connection().execute(
        update(SignInLink).where(col(SignInLink.id) == check.link_id, col(SignInLink.used_at).is_(None))
        .values(used_at=now))
    if rowcount(marked) != 1:
        return LinkCheck(LinkOutcome.USED, check.partner, check.link_id), None
    return check, open_session(session, partner=check.partner, kind=kind, now=now, idle=idle)


def open_session(session: Session, *, partner: Partner, kind: str, now: datetime, idle: timedelta) -> str:
    """A new session of `kind` for `partner`: its cookie token (only the hash is stored). The caller
    has established who the partner is — a one-time link (`redeem_link`), or a platform's signed
    word for a bound chat account (the dealer page: Telegram's initData, WeChat's OAuth)."""
    cookie = _new_token()
    session.add(WebSession(token_hash=token_hash(cookie), partner_id=partner.id, kind=kind,
                           csrf_token=secrets.token_urlsafe(24), created_at=now, last_seen_at=now,
                           expires_at=now + idle))
    session.flush()
    return cookie


def signed_in(session: Session, *, token: str, kind: str, now: datetime, idle: timedelta,
              touch: bool = True) -> SignedIn | None:
    """The live session behind a cookie's token, its idle expiry moved on (unless not `touch`:
    then the caller calls `touch_session`); None when there is none (unknown, of another kind,
    expired, signed out, or its partner may no longer use these pages)."""
    row = session.exec(select(WebSession, Partner).join(Partner, col(Partner.id) == col(WebSession.partner_id))
                       .where(col(WebSession.token_hash) == token_hash(token), col(WebSession.kind) == kind)).first()
    if row is None:
        return None
    web, partner = row
    if web.ended_at is not None or as_utc(web.expires_at) <= now or not allowed(partner, kind):
        return None
    if touch and now - as_utc(web.last_seen_at) >= TOUCH_EVERY:
        touch_session(session.connection(), session_id=web.id, now=now, idle=idle)
    return SignedIn(session_id=web.id, partner_id=partner.id, code=partner.code, name=partner.name,
                    role=partner.role, locale=partner.locale, kind=kind, csrf_token=web.csrf_token)


def touch_session(conn: Connection, *, session_id: int, now: datetime, idle: timedelta) -> None:
    """Move a session's idle expiry on from `now`, if it was last seen `TOUCH_EVERY` ago or more."""
    conn.execute(update(WebSession).where(col(WebSession.id) == session_id,
                                          col(WebSession.last_seen_at) <= now - TOUCH_EVERY)
                 .values(last_seen_at=now, expires_at=now + idle))


def sign_out(session: Session, *, session_id: int, now: datetime) -> None:
    session.connection().execute(update(WebSession).where(col(WebSession.id) == session_id,
                                                          col(WebSession.ended_at).is_(None)).values(ended_at=now))


def link_url(signin_url: str, token: str) -> str:
    """The one-time link a person opens: the sign-in page's URL with the token."""
    return f"{signin_url}?token={token}"
