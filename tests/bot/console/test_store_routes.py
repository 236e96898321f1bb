"""The store in the console (issue 16): approve and reject redemptions (the partner's message queued as
the chat's 批准/驳回 queues it), edit an item's stock and offer, adjust points with a reason — and
every refusal: a clear page, nothing changed."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest
from sqlalchemy import Engine, select

from messages.render import t
from models import rewards
from models.db import session_scope
from models.tables import AuditEntry, ChatIdentity, Partner, PointsEntry, Redemption, RewardItem
from models.values import utcnow
from tests.support.console_web import signed_in
from tests.support.incentives import balance, catalog, count, earn, outbox, stock


@pytest.fixture
def store(engine: Engine, admins: None) -> dict[str, int]:
    """A catalog; P1 (on Telegram) asked for a mug and CAP for a cap; P1 has 500 points left to spend."""
    now = utcnow()
    with session_scope(engine) as s:
        catalog(s, {"sku": "MUG", "name_zh": "马克杯", "name_en": "Mug", "points": 100, "stock": 5},
                {"sku": "CAP", "name_zh": "棒球帽", "name_en": "Cap", "points": 80, "stock": 2}, now=now)
        ids = dict(s.execute(select(Partner.code, Partner.id)).all())
        for code in ("P1", "CAP"):
            s.add(ChatIdentity(partner_id=ids[code], platform="telegram", user_ref=f"u{code}", chat_ref=f"u{code}",
                               bound_at=now - timedelta(days=2), last_seen_at=now - timedelta(days=1)))
    earn(engine, ids["P1"], 600)
    earn(engine, ids["CAP"], 100)
    with session_scope(engine) as s:
        mug, _ = rewards.redeem(s, ids["P1"], "MUG", utcnow())
        cap, _ = rewards.redeem(s, ids["CAP"], "CAP", utcnow())
        ids["mug"], ids["cap"] = mug.id, cap.id
    return ids


def status(engine: Engine, redemption_id: int) -> str:
    with session_scope(engine) as s:
        return s.execute(select(Redemption.status).where(Redemption.id == redemption_id)).scalar_one()


def test_the_store_page_lists_the_queue_and_the_catalog(site: httpx.Client, store: dict[str, int]) -> None:
    signed_in(site, "BOSS")
    page = site.get("/admin/store")
    assert page.status_code == 200
    assert f'id="redemption-{store["mug"]}"' in page.text and "张三" in page.text and "马克杯" in page.text
    assert "/admin/imports?kind=catalog" in page.text and 'id="item-CAP"' in page.text


def test_approve_and_reject_tell_the_partner_as_the_chat_does(site: httpx.Client, engine: Engine,
                                                              store: dict[str, int]) -> None:
    csrf = signed_in(site, "BOSS")
    approved = site.post(f"/admin/store/redemptions/{store['mug']}/approve", data={"csrf": csrf})
    assert approved.status_code == 303 and "done=approved" in approved.headers["location"]
    assert status(engine, store["mug"]) == "approved"
    told = outbox(engine, f"redemption:{store['mug']}:decided")
    assert len(told) == 1 and "马克杯" in next(iter(told.values()))["text"]

    rejected = site.post(f"/admin/store/redemptions/{store['cap']}/reject", data={"csrf": csrf, "note": "尺码缺货"})
    assert rejected.status_code == 303
    assert status(engine, store["cap"]) == "rejected" and stock(engine, "CAP") == 2
    assert balance(engine, store["CAP"]) == 100  # refunded
    told = next(iter(outbox(engine, f"redemption:{store['cap']}:decided").values()))["text"]
    assert "尺码缺货" in told and "棒球帽" in told
    with session_scope(engine) as s:
        actions = set(s.execute(select(AuditEntry.action)).scalars())
    assert {"ops.approve", "ops.reject"} <= actions
    shown = site.get(approved.headers["location"]).text
    assert t("console.store.done_approved", "zh", ref=store["mug"]) in shown

    twice = site.post(f"/admin/store/redemptions/{store['mug']}/reject", data={"csrf": csrf, "note": "晚了"})
    assert twice.status_code == 400
    assert t("rewards.already_decided", "zh", id=store["mug"], status="approved") in twice.text
    assert status(engine, store["mug"]) == "approved"


def test_redemption_refusals_change_nothing(site: httpx.Client, engine: Engine, store: dict[str, int]) -> None:
    csrf = signed_in(site, "BOSS")
    before = count(engine, PointsEntry), len(outbox(engine))
    no_csrf = site.post(f"/admin/store/redemptions/{store['mug']}/approve", data={})
    assert no_csrf.status_code == 403
    no_reason = site.post(f"/admin/store/redemptions/{store['cap']}/reject", data={"csrf": csrf, "note": "  "})
    assert no_reason.status_code == 400 and t("console.store.reason_required", "zh") in no_reason.text
    long_reason = site.post(f"/admin/store/redemptions/{store['cap']}/reject", data={"csrf": csrf, "note": "长" * 501})
    assert long_reason.status_code == 400 and t("rewards.note_too_long", "zh", max=500) in long_reason.text
    unknown = site.post("/admin/store/redemptions/99999/approve", data={"csrf": csrf})
    assert unknown.status_code == 400 and t("rewards.no_such_redemption", "zh", id=99999) in unknown.text
    assert site.post("/admin/store/redemptions/x1/approve", data={"csrf": csrf}).status_code == 400
    assert status(engine, store["mug"]) == status(engine, store["cap"]) == "pending"
    assert (count(engine, PointsEntry), len(outbox(engine))) == before


def test_edit_an_items_stock_and_offer(site: httpx.Client, engine: Engine, store: dict[str, int]) -> None:
    csrf = signed_in(site, "BOSS")
    assert site.post("/admin/store/items/MUG", data={"stock": "9", "seen_stock": "4"}).status_code == 403
    assert stock(engine, "MUG") == 4
    saved = site.post("/admin/store/items/MUG", data={"csrf": csrf, "stock": "9", "seen_stock": "4"})  # unchecked: off
    assert saved.status_code == 303
    with session_scope(engine) as s:
        mug = s.execute(select(RewardItem).where(RewardItem.sku == "MUG")).scalar_one()
        assert (mug.stock, mug.active) == (9, False)
    stale = site.post("/admin/store/items/MUG", data={"csrf": csrf, "stock": "1", "seen_stock": "4", "active": "1"})
    assert stale.status_code == 400 and t("rewards.stock_changed", "zh", sku="MUG", seen=4, stock=9) in stale.text
    bad = site.post("/admin/store/items/MUG", data={"csrf": csrf, "stock": "-3", "seen_stock": "9", "active": "1"})
    assert bad.status_code == 400
    unknown = site.post("/admin/store/items/NOPE", data={"csrf": csrf, "stock": "1", "seen_stock": "0"})
    assert unknown.status_code == 400 and t("rewards.unknown_sku", "zh", value="NOPE") in unknown.text
    assert stock(engine, "MUG") == 9


def test_adjust_points_with_a_reason(site: httpx.Client, engine: Engine, store: dict[str, int]) -> None:
    csrf = signed_in(site, "BOSS")
    assert site.post("/admin/store/points", data={"partner": "P1", "amount": "+50", "note": "补发"}).status_code == 403
    no_note = site.post("/admin/store/points", data={"csrf": csrf, "partner": "P1", "amount": "+50", "note": ""})
    assert no_note.status_code == 400 and t("ledger.note_required", "zh") in no_note.text
    assert 'value="+50"' in no_note.text  # what was typed stays
    too_much = site.post("/admin/store/points", data={"csrf": csrf, "partner": "P1", "amount": "-9999", "note": "扣"})
    assert too_much.status_code == 400 and "P1" in too_much.text
    nobody = site.post("/admin/store/points", data={"csrf": csrf, "partner": "ZZ", "amount": "5", "note": "x"})
    assert nobody.status_code == 400 and t("error.unknown_partner", "zh", value="ZZ") in nobody.text
    assert site.post("/admin/store/points", data={"csrf": csrf, "partner": "P1", "amount": "0", "note": "x"}
                     ).status_code == 400
    assert balance(engine, store["P1"]) == 500 and not outbox(engine, "points:adjusted")
    done = site.post("/admin/store/points", data={"csrf": csrf, "partner": "p1", "amount": "+50", "note": "补发 11 月培训积分"})
    assert done.status_code == 303 and balance(engine, store["P1"]) == 550
    pushed = list(outbox(engine, "points:adjusted").values())
    assert len(pushed) == 1 and "补发 11 月培训积分" in pushed[0]["text"]
