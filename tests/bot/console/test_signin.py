"""Signing in to the console (issue 15): one-time links from the CLI and the chat, the cookie, and
every refusal — a non-admin, an expired link, a reused link, a missing CSRF token — each a clear
page that changes nothing."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest
from sqlalchemy import Engine, func, select

from bot.settings import get_settings
from messages.render import t
from models import web_sessions
from models.db import session_scope
from models.kinds import WebKind
from models.tables import AuditEntry, Partner, WebSession
from models.values import as_utc, utcnow
from tests.support.cli_runner import mianzi
from tests.support.console_web import csrf_of, link_path, signed_in, token_of


def count(engine: Engine, table: type) -> int:
    with session_scope(engine) as s:
        return int(s.execute(select(func.count()).select_from(table)).scalar_one())


def locale_of(engine: Engine, code: str) -> str:
    with session_scope(engine) as s:
        return s.execute(select(Partner.locale).where(Partner.code == code)).scalar_one()


def test_a_link_from_the_cli_signs_in_once(site: httpx.Client, engine: Engine) -> None:
    ran = mianzi("admin", "link", "boss", "--json")  # the code in any case
    assert ran.code == 0 and ran.json()["url"].startswith("http://console.test/admin/signin?token=")
    assert ran.json()["partner"] == "BOSS"
    path = link_path("BOSS")
    opened = site.get(path)  # the page with the button: opening the link does not use it
    assert opened.status_code == 200 and "孙经理（BOSS）" in opened.text and count(engine, WebSession) == 0
    assert site.get(path).status_code == 200  # a link preview cannot spend it either
    answer = site.post("/admin/signin", data={"token": token_of(path)})
    assert answer.status_code == 303 and answer.headers["location"] == "/admin/"
    cookie = answer.headers["set-cookie"]
    assert "mianzi_console=" in cookie and "HttpOnly" in cookie and "SameSite=lax" in cookie
    assert "Path=/admin" in cookie and "Secure" not in cookie  # http: a Secure cookie would never come back
    assert site.get("/admin/audit").status_code == 200
    with session_scope(engine) as s:
        assert [e.action for e in s.execute(select(AuditEntry)).scalars()] == ["signin"]

    with httpx.Client(base_url=str(site.base_url), trust_env=False) as again:  # someone else, the same link
        used = again.post("/admin/signin", data={"token": token_of(path)})
    assert used.status_code == 410 and t("console.refusal.used", "zh") in used.text
    assert "mianzi_console" not in used.headers.get("set-cookie", "") and count(engine, WebSession) == 1


def test_refused_links_each_get_their_page_and_change_nothing(site: httpx.Client, engine: Engine) -> None:
    with session_scope(engine) as s:
        boss = s.execute(select(Partner).where(Partner.code == "BOSS")).scalar_one()
        dealer = s.execute(select(Partner).where(Partner.code == "P1")).scalar_one()
        old = web_sessions.issue_link(s, partner=boss, kind=WebKind.CONSOLE, now=utcnow() - timedelta(minutes=11))
        theirs = web_sessions.issue_link(s, partner=dealer, kind=WebKind.CONSOLE, now=utcnow())
        for_page = web_sessions.issue_link(s, partner=boss, kind=WebKind.DEALER, now=utcnow())
    cases = [(old, 410, "expired"), (theirs, 403, "not_allowed"), ("made-up", 404, "unknown"),
             (for_page, 404, "unknown")]  # a dealer-page link is no console link
    for token, status, key in cases:
        page = site.get("/admin/signin", params={"token": token})
        assert page.status_code == status and t(f"console.refusal.{key}_title", "zh") in page.text, key
        used = site.post("/admin/signin", data={"token": token})
        assert used.status_code == status and "set-cookie" not in used.headers, key
    assert site.get("/admin/signin").status_code == 404
    assert site.post("/admin/signin", data={}).status_code == 404
    assert count(engine, WebSession) == 0 and count(engine, AuditEntry) == 0


def test_the_cli_refuses_non_admins_unknown_codes_and_a_missing_public_url(site: httpx.Client, engine: Engine,
                                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    ran = mianzi("admin", "link", "P1")
    assert ran.code == 2 and ran.err.strip() == t("console.cli.not_admin", "zh", name="张三", code="P1")
    ran = mianzi("admin", "link", "NOBODY")
    assert ran.code == 2 and "NOBODY" in ran.err
    monkeypatch.delenv("MIANZI_PUBLIC_URL")
    get_settings.cache_clear()
    ran = mianzi("admin", "link", "BOSS")
    assert ran.code == 2 and "MIANZI_PUBLIC_URL" in ran.err
    with session_scope(engine) as s:
        assert s.execute(select(func.count()).select_from(web_sessions.SignInLink)).scalar_one() == 0


def test_signed_out_pages_say_how_to_sign_in(site: httpx.Client) -> None:
    for path in ("/admin/", "/admin/partners", "/admin/audit", "/admin/partners/P1"):
        page = site.get(path)
        assert page.status_code == 401 and t("console.signin.way_cli", "zh") in page.text, path
        assert t("console.signin.no_public_url", "zh") not in page.text  # it is set here
    assert site.get("/admin").status_code in (307, 308)  # to /admin/
    assert site.post("/admin/locale", data={"locale": "en"}).status_code == 401


def test_every_post_needs_the_sessions_csrf_token(site: httpx.Client, engine: Engine) -> None:
    csrf = signed_in(site, "BOSS")
    for form in ({"locale": "en"}, {"locale": "en", "csrf": "wrong"}, {"locale": "en", "csrf": ""}):
        refused = site.post("/admin/locale", data=form)
        assert refused.status_code == 403 and t("console.refusal.csrf_title", "zh") in refused.text
    refused = site.post("/admin/partners/P1/unbind", data={"platform": "telegram"})
    assert refused.status_code == 403
    assert locale_of(engine, "BOSS") == "zh" and count(engine, AuditEntry) == 1  # the sign-in only

    with httpx.Client(base_url=str(site.base_url), trust_env=False) as other:
        other_csrf = signed_in(other, "ALT")  # another admin's token is not this session's
    assert site.post("/admin/locale", data={"locale": "en", "csrf": other_csrf}).status_code == 403
    assert locale_of(engine, "BOSS") == "zh"

    switched = site.post("/admin/locale", data={"locale": "en", "csrf": csrf, "back": "/admin/partners"})
    assert switched.status_code == 303 and switched.headers["location"] == "/admin/partners"
    assert locale_of(engine, "BOSS") == "en" and "Partners" in site.get("/admin/partners").text
    assert site.post("/admin/locale", data={"locale": "zh"}, headers={"X-CSRF-Token": csrf}).status_code == 303
    assert locale_of(engine, "BOSS") == "zh"
    away = site.post("/admin/locale", data={"locale": "en", "csrf": csrf, "back": "https://evil.example/"})
    assert away.headers["location"] == "/admin/"  # never sent off the console


def test_sign_out_ends_the_session_and_demoted_admins_lose_it(site: httpx.Client, engine: Engine) -> None:
    csrf = signed_in(site, "BOSS")
    page = site.post("/admin/signout", data={"csrf": csrf})
    assert page.status_code == 200 and t("console.signin.signed_out", "zh") in page.text
    assert site.get("/admin/audit").status_code == 401
    site.cookies.clear()
    signed_in(site, "BOSS")
    with session_scope(engine) as s:
        s.execute(select(Partner).where(Partner.code == "BOSS")).scalar_one().role = "dealer"
    assert site.get("/admin/audit").status_code == 401
    with session_scope(engine) as s:
        assert [e.action for e in s.execute(select(AuditEntry).order_by(AuditEntry.id)).scalars()] == \
            ["signin", "signout", "signin"]


def test_unknown_pages_and_wrong_methods_get_a_page(site: httpx.Client) -> None:
    signed_in(site, "BOSS")
    missing = site.get("/admin/no/such/page")
    assert missing.status_code == 404 and t("console.refusal.not_found_title", "zh") in missing.text
    assert site.get("/admin/partners/NOBODY").status_code == 404
    assert site.get("/admin/signout").status_code == 405
    assert site.get("/admin/static/htmx.min.js").status_code == 200


def test_the_audit_page_lists_who_did_what(site: httpx.Client) -> None:
    csrf = signed_in(site, "BOSS")
    site.post("/admin/locale", data={"locale": "en", "csrf": csrf})
    page = site.get("/admin/audit").text
    assert "Changed language" in page and "Signed in" in page and "孙经理" in page
    assert csrf_of(page) == csrf


def test_pages_do_not_wait_for_an_import_holding_sqlites_lock(site: httpx.Client, engine: Engine) -> None:
    """A page view writes its session's last-seen time at most once a minute; when another writer
    (an import) holds SQLite's lock, the page answers anyway and the write waits for the next view."""
    if engine.dialect.name != "sqlite":
        pytest.skip("SQLite's one writer")
    signed_in(site, "BOSS")
    with session_scope(engine) as s:
        s.execute(WebSession.__table__.update().values(last_seen_at=utcnow() - timedelta(minutes=5)))
    with engine.connect() as importing:
        importing.exec_driver_sql("BEGIN IMMEDIATE")  # the write lock, as a long import holds it
        try:
            page = site.get("/admin/audit", timeout=10)
        finally:
            importing.rollback()
    assert page.status_code == 200
    with session_scope(engine) as s:
        seen = s.execute(select(WebSession.last_seen_at)).scalar_one()
    assert utcnow() - as_utc(seen) > timedelta(minutes=4)  # not written while the lock was held
    assert site.get("/admin/audit").status_code == 200
    with session_scope(engine) as s:
        assert utcnow() - as_utc(s.execute(select(WebSession.last_seen_at)).scalar_one()) < timedelta(minutes=1)
