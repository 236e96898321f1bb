"""One-time sign-in links and the sessions they open (models.web_sessions), on each backend."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine
from sqlmodel import select

from models import audit, web_sessions
from models.db import session_scope
from models.kinds import Role, WebKind
from models.tables import Partner, SignInLink
from models.web_sessions import LinkOutcome

NOW = datetime(2026, 12, 2, 8, 0, tzinfo=UTC)
IDLE = timedelta(hours=8)


def _partner(engine: Engine, role: str = Role.ADMIN) -> Partner:
    with session_scope(engine) as s:
        p = Partner(code="BOSS", name="王经理", role=role)
        s.add(p)
        s.flush()
        return p


def test_a_link_opens_one_session_once_and_stores_only_hashes(engine: Engine) -> None:
    boss = _partner(engine)
    with session_scope(engine) as s:
        token = web_sessions.issue_link(s, partner=boss, kind=WebKind.CONSOLE, now=NOW)
        assert s.exec(select(SignInLink)).one().token_hash == web_sessions.token_hash(token) != token
    with session_scope(engine) as s:
        check, cookie = web_sessions.redeem_link(s, token=token, kind=WebKind.CONSOLE, now=NOW, idle=IDLE)
    assert check.outcome == LinkOutcome.OK and cookie
    with session_scope(engine) as s:
        again, none = web_sessions.redeem_link(s, token=token, kind=WebKind.CONSOLE, now=NOW, idle=IDLE)
        assert (again.outcome, none) == (LinkOutcome.USED, None)
        who = web_sessions.signed_in(s, token=cookie, kind=WebKind.CONSOLE, now=NOW + timedelta(hours=1), idle=IDLE)
        assert who is not None and who.code == "BOSS" and who.csrf_token
        assert web_sessions.signed_in(s, token=cookie, kind=WebKind.DEALER, now=NOW, idle=IDLE) is None
        # used an hour in: the idle expiry moved on to 9:00 + 8 h
        assert web_sessions.signed_in(s, token=cookie, kind=WebKind.CONSOLE, now=NOW + timedelta(hours=8, minutes=30),
                                      idle=IDLE) is not None
        # ... and unused for longer than the idle time, it is over
        assert web_sessions.signed_in(s, token=cookie, kind=WebKind.CONSOLE, now=NOW + timedelta(hours=17, minutes=31),
                                      idle=IDLE) is None
        web_sessions.sign_out(s, session_id=who.session_id, now=NOW)
        assert web_sessions.signed_in(s, token=cookie, kind=WebKind.CONSOLE, now=NOW, idle=IDLE) is None
        audit.record(s, partner_id=boss.id, action="session.sign_out", now=NOW)
        lines, total = audit.page(s, offset=0, limit=10)
        assert total == 1 and lines[0].who_code == "BOSS"


def test_expired_unknown_and_no_longer_admin_links_are_refused(engine: Engine) -> None:
    boss = _partner(engine)
    with session_scope(engine) as s:
        old = web_sessions.issue_link(s, partner=boss, kind=WebKind.CONSOLE, now=NOW - timedelta(minutes=11))
        fresh = web_sessions.issue_link(s, partner=boss, kind=WebKind.CONSOLE, now=NOW)
    with session_scope(engine) as s:
        assert web_sessions.check_link(s, token=old, kind=WebKind.CONSOLE, now=NOW).outcome == LinkOutcome.EXPIRED
        assert web_sessions.check_link(s, token="nope", kind=WebKind.CONSOLE, now=NOW).outcome == LinkOutcome.UNKNOWN
        s.get(Partner, boss.id).role = Role.DEALER  # type: ignore[union-attr]
    with session_scope(engine) as s:
        check, cookie = web_sessions.redeem_link(s, token=fresh, kind=WebKind.CONSOLE, now=NOW, idle=IDLE)
        assert (check.outcome, cookie) == (LinkOutcome.NOT_ALLOWED, None)
