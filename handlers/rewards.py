"""Chat commands of the rewards store: `/rewards`, `/redeem SKU`, and the admins' `/approve` and `/reject`."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlmodel import Session

from handlers.identity import Asker
from handlers.notify import push, say
from handlers.parse import id_arg, is_number
from handlers.registry import ADMINS, command
from handlers.types import ChatConfig, Reply
from models import partners, points
from models import rewards as store
from models.errors import DataError
from models.kinds import RedemptionStatus, Role
from models.recipients import Recipient
from models.tables import Partner, Redemption, RewardItem

PENDING_SHOWN = 10


@command("rewards")
def cmd_rewards(session: Session, asker: Asker, args: list[str], config: ChatConfig, now: datetime) -> list[Reply]:
    """The catalog, what the partner can afford first; for an admin also the pending requests."""
    partner = asker.partner
    assert partner is not None
    have = points.balance(session, partner.id)
    shown = catalog(session, balance=have, locale=asker.locale)
    pending = []
    if asker.role == Role.ADMIN:
        pending = [{"id": r.id, "partner": p.name, "code": p.code, "item": store.name(i, asker.locale),
                    "points": r.points, "at": r.created_at}
                   for r, i, p in store.redemptions(session, status=RedemptionStatus.PENDING, limit=PENDING_SHOWN)]
    return [Reply("rewards", {"balance": have, "items": shown, "pending": pending, "role": asker.role,
                              "tz": config.timezone}, asker.locale)]


def catalog(session: Session, *, balance: int, locale: str) -> list[dict[str, Any]]:
    """The store's items for someone with `balance` points: what they can afford first (chat `/rewards`
    and the dealer page)."""
    shown: list[dict[str, Any]] = []
    for item in store.items(session):
        affordable = item.stock > 0 and item.points <= balance
        shown.append({"sku": item.sku, "name": store.name(item, locale), "points": item.points,
                      "stock": item.stock, "affordable": affordable, "short": max(item.points - balance, 0)})
    shown.sort(key=lambda x: (not x["affordable"], x["stock"] <= 0, x["points"], x["sku"]))
    return shown


@command("redeem", glued=True)
def cmd_redeem(session: Session, asker: Asker, args: list[str], config: ChatConfig, now: datetime) -> list[Reply]:
    partner = asker.partner
    assert partner is not None
    if asker.incoming.is_group:
        return [say(asker, "rewards.in_private")]
    if not args:
        return [say(asker, "rewards.redeem_usage")]
    redemption, item = store.redeem(session, partner.id, args[0], now)
    _tell_admins(session, redemption, item, partner, now)
    return [say(asker, "rewards.requested", id=redemption.id, name=store.name(item, asker.locale),
                points=item.points, balance=points.balance(session, partner.id))]


def _tell_admins(session: Session, redemption: Redemption, item: RewardItem, partner: Partner, now: datetime) -> None:
    """Admins hear of a new request at once: the partner's points are reserved until someone decides."""
    admins = partners.active_admin_ids(session)

    def context(r: Recipient) -> dict[str, object]:
        return {"key": "rewards.admin_new", "params": {
            "id": redemption.id, "partner": partner.name, "code": partner.code, "points": redemption.points,
            "name": store.name(item, r.locale)}}

    push(session, list(admins), key=lambda pid: f"redemption:{redemption.id}:admin:{pid}", kind="redemption",
         template="say", context=context, now=now)


@command("approve", roles=ADMINS)
def cmd_approve(session: Session, asker: Asker, args: list[str], config: ChatConfig, now: datetime) -> list[Reply]:
    return _decide(session, asker, args, now, approve=True)


@command("reject", roles=ADMINS, text_after=1)
def cmd_reject(session: Session, asker: Asker, args: list[str], config: ChatConfig, now: datetime) -> list[Reply]:
    return _decide(session, asker, args, now, approve=False)


def _decide(session: Session, asker: Asker, args: list[str], now: datetime, approve: bool) -> list[Reply]:
    ref = args[0] if args else ""
    if not is_number(ref):
        return [say(asker, "rewards.approve_usage" if approve else "rewards.reject_usage")]
    ident = id_arg(ref)
    by = asker.partner.id if asker.partner else None
    if ident is None:  # a number no redemption can have
        raise DataError("rewards.no_such_redemption", id=ref.lstrip("#＃"))
    decision = decide(session, ident, approve=approve, by=by, note=" ".join(args[1:]), now=now)
    r = decision.redemption
    return [say(asker, "rewards.approved" if approve else "rewards.rejected", id=r.id, partner=decision.partner.name,
                name=store.name(decision.item, asker.locale), points=r.points)]


def decide(session: Session, redemption_id: int, *, approve: bool, by: int | None, note: str | None,
           now: datetime) -> store.Decision:
    """Approve or reject (with `note`, told to the partner) and queue the partner's message: the chat's
    `批准`/`驳回` and the console's buttons alike."""
    if approve:
        decision = store.approve(session, redemption_id, by, now)
    else:
        decision = store.reject(session, redemption_id, by, note, now)
    tell_partner(session, decision, now)
    return decision


def tell_partner(session: Session, decision: store.Decision, now: datetime) -> int:
    """Queue the outcome for the partner (CLI and chat decisions alike)."""
    r, item = decision.redemption, decision.item
    balance = points.balance(session, r.partner_id)

    def context(rec: Recipient) -> dict[str, object]:
        return {"status": r.status, "id": r.id, "name": store.name(item, rec.locale), "points": r.points,
                "note": r.note, "balance": balance}

    return push(session, [r.partner_id], key=lambda pid: f"redemption:{r.id}:decided", kind="redemption",
                template="redemption_decided", context=context, now=now)
