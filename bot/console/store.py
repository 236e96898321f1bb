"""The store and points: the redemption queue (approve; reject with a reason — the partner is told,
as the chat's `批准`/`驳回` tells them: `handlers.rewards.decide`), the catalog (uploaded on the
imports page, kind `catalog`; stock and on-offer edited here per item: `models.rewards.set_item`),
and points adjustments with a reason (`handlers.points.adjust`, as the chat's `调整积分`)."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from bot.console import MOUNT
from bot.console.site import Site
from handlers import points as points_chat
from handlers import rewards as rewards_chat
from messages.render import t
from models import audit, points, rewards
from models.errors import DataError
from models.kinds import RedemptionStatus
from models.partners import partner_by_code_any_case
from models.values import utcnow
from models.web_sessions import SignedIn

QUEUE_SHOWN = 100
DECIDED_SHOWN = 20
DONE = ("approved", "rejected", "item", "adjusted")


def routes(site: Site) -> list[Route]:
    pages = site.pages

    async def overview(request: Request, admin: SignedIn) -> Response:
        found = await site.run(_state)
        done = request.query_params.get("done")
        return pages.render(request, "store.html", admin=admin, **found, done=done if done in DONE else None,
                            ref=request.query_params.get("ref", "")[:64], error=None, form={})

    async def refused(request: Request, admin: SignedIn, exc: DataError, form: dict[str, str]) -> Response:
        """The store page again with why nothing changed (400), the form as it was typed."""
        found = await site.run(_state)
        return pages.render(request, "store.html", admin=admin, status=400, **found, done=None, ref="",
                            error=t(exc.key, pages.locale(admin), **exc.params), form=form)

    async def decide(request: Request, admin: SignedIn) -> Response:
        raw = request.path_params["ident"]
        ident = int(raw) if raw.isdigit() and 0 < int(raw) < 2**31 else None
        approve = request.url.path.endswith("/approve")
        form = await request.form()
        note = form.get("note")
        note = note.strip() if isinstance(note, str) else ""
        now = utcnow()

        def change(session: Session) -> int:
            if ident is None:
                raise DataError("rewards.no_such_redemption", id=raw[:20])
            if not approve and not note:
                raise DataError("console.store.reason_required")
            decision = rewards_chat.decide(session, ident, approve=approve, by=admin.partner_id, note=note, now=now)
            r = decision.redemption
            audit.record(session, partner_id=admin.partner_id, action="ops.approve" if approve else "ops.reject",
                         now=now, object_kind="ops.redemption", object_ref=str(r.id),
                         details={"ops.partner": decision.partner.code, "ops.item": decision.item.sku,
                                  "ops.points": r.points, **({} if approve else {"ops.note": r.note or ""})})
            return r.id

        try:
            done = await site.run(change)
        except DataError as exc:
            return await refused(request, admin, exc, {"note": note, "ident": raw[:20]})
        return RedirectResponse(f"{MOUNT}/store?done={'approved' if approve else 'rejected'}&ref={done}",
                                status_code=303)

    async def edit_item(request: Request, admin: SignedIn) -> Response:
        sku = request.path_params["sku"][:64]
        form = await request.form()
        stock, seen = form.get("stock"), form.get("seen_stock")
        active = form.get("active") == "1"
        now = utcnow()

        def change(session: Session) -> str:
            if not isinstance(stock, str) or not stock.strip().isdigit():
                raise DataError("rewards.bad_stock", value=str(stock or "")[:20], max=rewards.MAX_STOCK)
            if not isinstance(seen, str) or not seen.isdigit():
                raise DataError("rewards.bad_stock", value=str(seen or "")[:20], max=rewards.MAX_STOCK)
            item = rewards.set_item(session, sku=sku, stock=int(stock.strip()), active=active, seen_stock=int(seen),
                                    now=now)
            audit.record(session, partner_id=admin.partner_id, action="ops.item", now=now, object_kind="ops.item",
                         object_ref=item.sku, details={"ops.stock": item.stock,
                                                       "ops.active": t("console.store.yes" if item.active else
                                                                       "console.store.no", pages.locale(admin))})
            return item.sku

        try:
            done = await site.run(change)
        except DataError as exc:
            return await refused(request, admin, exc, {})
        return RedirectResponse(f"{MOUNT}/store?done=item&ref={done}#items", status_code=303)

    async def adjust(request: Request, admin: SignedIn) -> Response:
        form = await request.form()
        typed = {k: v.strip()[:300] if isinstance(v := form.get(k), str) else "" for k in ("partner", "amount", "note")}
        now = utcnow()

        def change(session: Session) -> str:
            partner = partner_by_code_any_case(session, code=typed["partner"]) if typed["partner"] else None
            if partner is None:
                raise DataError("error.unknown_partner", value=typed["partner"][:40])
            entry, balance = points_chat.adjust(session, partner.id, points.parse_amount(typed["amount"]),
                                                typed["note"], by=admin.partner_id, now=now)
            audit.record(session, partner_id=admin.partner_id, action="ops.adjust", now=now, object_kind="partner",
                         object_ref=partner.code, details={"ops.amount": entry.amount, "ops.note": entry.reason["note"],
                                                           "ops.points": balance})
            return partner.code

        try:
            done = await site.run(change)
        except DataError as exc:
            return await refused(request, admin, exc, typed)
        return RedirectResponse(f"{MOUNT}/store?done=adjusted&ref={done}#points", status_code=303)

    return [Route("/store", site.access.page(overview), methods=["GET"]),
            Route("/store/redemptions/{ident}/approve", site.access.page(decide), methods=["POST"]),
            Route("/store/redemptions/{ident}/reject", site.access.page(decide), methods=["POST"]),
            Route("/store/items/{sku}", site.access.page(edit_item), methods=["POST"]),
            Route("/store/points", site.access.page(adjust), methods=["POST"])]


def _state(session: Session) -> dict[str, Any]:
    """What the store page shows: the queue (oldest first, with each partner's balance), the catalog,
    the units waiting per item, the latest decisions."""
    queue = rewards.redemptions(session, status=RedemptionStatus.PENDING, limit=QUEUE_SHOWN)
    have = points.balances(session, [r.partner_id for r, _i, _p in queue])
    return {"queue": [(r, i, p, have.get(p.id, 0)) for r, i, p in queue],
            "queued": rewards.pending_count(session=session),
            "items": rewards.items(session, active_only=False),
            "waiting": rewards.pending_by_item(session=session),
            "decided": rewards.decided(session, limit=DECIDED_SHOWN)}
