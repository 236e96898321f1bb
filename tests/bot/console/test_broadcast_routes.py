"""Broadcasts in the console (issue 16): the audience's count, the preview per app (the Official
Account's 48-hour window per recipient), confirm through `handlers.broadcasts`, and every refusal —
a clear page, nothing queued."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest
from sqlalchemy import Engine, func, select

from messages.render import t
from models.db import session_scope
from models.tables import AuditEntry, Broadcast, ChatIdentity, Outbox, Partner
from models.values import utcnow
from tests.support import builders as b
from tests.support.console_web import signed_in


def bind(engine: Engine, code: str, platform: str, ref: str, seen_hours_ago: float = 1) -> None:
    now = utcnow()
    with session_scope(engine) as s:
        pid = s.execute(select(Partner.id).where(Partner.code == code)).scalar_one()
        s.add(ChatIdentity(partner_id=pid, platform=platform, user_ref=ref, chat_ref=ref, bound_at=now - timedelta(days=9),
                           last_seen_at=now - timedelta(hours=seen_hours_ago)))


@pytest.fixture
def audience(engine: Engine, admins: None) -> None:
    """P1 on Telegram and CAP on WeCom in 华东; two Official Account followers in 华南, one inside
    the 48-hour window and one outside it."""
    with session_scope(engine) as s:
        b.partners(s, {"code": "W1", "name": "微一", "region": "华南", "industry": "建材"},
                   {"code": "W2", "name": "微二", "region": "华南", "industry": "建材", "locale": "en"})
    bind(engine, "P1", "telegram", "5001")
    bind(engine, "CAP", "wecom", "WangCap")
    bind(engine, "W1", "wechat", "oW1openid", seen_hours_ago=2)
    bind(engine, "W2", "wechat", "oW2openid", seen_hours_ago=50)


def count(engine: Engine, table: type) -> int:
    with session_scope(engine) as s:
        return int(s.execute(select(func.count()).select_from(table)).scalar_one())


def test_the_count_follows_the_audience(site: httpx.Client, audience: None) -> None:
    signed_in(site, "BOSS")
    everyone = site.get("/admin/broadcasts/count")
    assert everyone.status_code == 200 and ">4<" in everyone.text
    east = site.get("/admin/broadcasts/count", params={"region": "华东"})
    assert ">2<" in east.text and t("platform.wecom", "zh") in east.text
    on_wechat = site.get("/admin/broadcasts/count", params={"platform": "wechat", "industry": "建材"})
    assert ">2<" in on_wechat.text
    bad = site.get("/admin/broadcasts/count", params={"platform": "fax"})
    assert "note bad" in bad.text
    form = site.get("/admin/broadcasts/new")
    assert form.status_code == 200 and "华南" in form.text and "建材" in form.text


def test_refusals_queue_nothing(site: httpx.Client, engine: Engine, audience: None) -> None:
    csrf = signed_in(site, "BOSS")
    no_csrf = site.post("/admin/broadcasts", data={"text": "你好"})
    assert no_csrf.status_code == 403 and count(engine, Broadcast) == 0
    empty = site.post("/admin/broadcasts", data={"csrf": csrf, "text": "  "})
    assert empty.status_code == 400 and t("broadcast.empty", "zh") in empty.text
    bad = site.post("/admin/broadcasts", data={"csrf": csrf, "text": "你好", "city_tier": "9"})
    assert bad.status_code == 400 and "city_tier=9" in bad.text
    past = site.post("/admin/broadcasts", data={"csrf": csrf, "text": "你好", "when": "later", "at": "2020-01-01T09:00"})
    assert past.status_code == 400 and t("console.broadcasts.at_past", "zh", value="2020-01-01T09:00") in past.text
    no_time = site.post("/admin/broadcasts", data={"csrf": csrf, "text": "你好", "when": "later"})
    assert no_time.status_code == 400 and t("console.broadcasts.at_missing", "zh") in no_time.text
    assert "你好" in no_time.text  # the text typed is kept
    assert count(engine, Broadcast) == 0 and count(engine, Outbox) == 0
    assert site.get("/admin/broadcasts/999").status_code == 404
    assert site.get("/admin/broadcasts/abc/progress").status_code == 404


def test_preview_then_confirm_queues_through_the_handler(site: httpx.Client, engine: Engine, audience: None) -> None:
    csrf = signed_in(site, "BOSS")
    made = site.post("/admin/broadcasts", data={"csrf": csrf, "text": "12月促销政策已更新", "region": "华南"})
    assert made.status_code == 303
    where = made.headers["location"]
    preview = site.get(where)
    assert preview.status_code == 200
    html = preview.text
    assert "12月促销政策已更新" in html and "—— 孙经理" in html  # the text as sent, signed as the chat signs it
    assert "W1" in html and "W2" in html and "P1" not in html.split("<h2 class=\"section\">")[-1]
    # no template configured: W1 (2 h ago) gets a customer-service text, W2 (50 h ago) nothing
    assert t("console.broadcasts.way_custom", "zh") in html and t("console.broadcasts.way_none", "zh") in html
    assert t("console.broadcasts.no_template", "zh") in html
    assert t("console.partner.lang_en", "zh") in html  # W2 reads English: both languages previewed

    # another admin does not see nor send BOSS's draft
    other = httpx.Client(base_url=site.base_url, trust_env=False, follow_redirects=False)
    other_csrf = signed_in(other, "ALT")
    assert other.get(where).status_code == 404
    assert other.post(where + "/confirm", data={"csrf": other_csrf}).status_code == 404
    other.close()

    assert site.post(where + "/confirm", data={}).status_code == 403
    assert count(engine, Outbox) == 0
    sent = site.post(where + "/confirm", data={"csrf": csrf})
    assert sent.status_code == 303 and sent.headers["location"] == where
    with session_scope(engine) as s:
        rows = s.execute(select(Outbox.platform, Outbox.payload)).all()
        assert sorted(p for p, _ in rows) == ["wechat", "wechat"]
        assert all("12月促销政策已更新" in payload["text"] for _, payload in rows)
        actions = s.execute(select(AuditEntry.action, AuditEntry.object_ref)).all()
        assert ("ops.broadcast", where.rsplit("/", 1)[1]) in actions
    page = site.get(where)
    assert page.status_code == 200 and 'id="progress"' in page.text and 'hx-trigger="every 1s"' in page.text
    part = site.get(where + "/progress")
    assert part.status_code == 200 and part.text.lstrip().startswith("<div id=\"progress\"")
    again = site.post(where + "/confirm", data={"csrf": csrf})
    assert again.status_code == 409 and count(engine, Outbox) == 2
    listing = site.get("/admin/broadcasts")
    assert listing.status_code == 200 and "12月促销政策已更新" in listing.text
    audit = site.get("/admin/audit")
    assert t("console.action.ops.broadcast", "zh") in audit.text


def test_a_dropped_draft_sends_nothing(site: httpx.Client, engine: Engine, audience: None) -> None:
    csrf = signed_in(site, "BOSS")
    where = site.post("/admin/broadcasts", data={"csrf": csrf, "text": "草稿", "when": "later",
                                                 "at": (utcnow() + timedelta(days=2)).strftime("%Y-%m-%dT%H:%M")}
                      ).headers["location"]
    assert site.post(where + "/cancel", data={}).status_code == 403
    dropped = site.post(where + "/cancel", data={"csrf": csrf})
    assert dropped.status_code == 303
    assert site.get(where).status_code == 404
    late = site.post(where + "/confirm", data={"csrf": csrf})
    assert late.status_code == 409 and t("broadcast.not_draft", "zh", id=where.rsplit("/", 1)[1]) in late.text
    assert count(engine, Outbox) == 0
