"""Points in chat and on schedule: the admins' `/adjust`, expiry and the reminder a month before it.

The scheduler calls `expire_due` and `queue_expiry_reminders` (daily is plenty) with the
`MIANZI_POINTS_EXPIRY_MONTHS` setting; with 0 (the default) points never expire and both do nothing.
"""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session

from handlers.identity import Asker
from handlers.notify import push, say
from handlers.registry import ADMINS, command
from handlers.types import ChatConfig, Reply
from models import partners, points
from models.recipients import Recipient
from models.tables import PointsEntry


@command("adjust", roles=ADMINS, text_after=2)
def cmd_adjust(session: Session, asker: Asker, args: list[str], config: ChatConfig, now: datetime) -> list[Reply]:
    """`/adjust PARTNER +N reason` (`调整积分 P1 -50 重复发放`)."""
    if len(args) < 3:
        return [say(asker, "ledger.adjust_usage")]
    code, amount_text, note = args[0], args[1], " ".join(args[2:])
    partner = partners.partner_by_code_any_case(session, code=code)
    if partner is None:
        return [say(asker, "error.unknown_partner", value=code[:40])]
    entry, balance = adjust(session, partner.id, points.parse_amount(amount_text), note,
                            by=asker.partner.id if asker.partner else None, now=now)
    return [say(asker, "ledger.adjusted", name=partner.name, code=partner.code, amount=entry.amount, note=note,
                balance=balance)]


def adjust(session: Session, partner_id: int, amount: int, note: str, *, by: int | None,
           now: datetime) -> tuple[PointsEntry, int]:
    """An admin's adjustment with its reason (`models.points.adjust`), and the partner told: the chat's
    `调整积分`, `mianzi points adjust` and the console alike. Returns the entry and the new balance."""
    entry = points.adjust(session, partner_id, amount, note, by, now)
    return entry, tell_adjusted(session, partner_id, entry.amount, entry.reason["note"], entry.id, now)


def tell_adjusted(session: Session, partner_id: int, amount: int, note: str, entry_id: int, now: datetime) -> int:
    """Tell the partner about an adjustment (chat and CLI alike); returns their new balance."""
    balance = points.balance(session, partner_id)
    push(session, [partner_id], key=lambda pid: f"points:adjusted:{entry_id}", kind="points", template="say",
         context={"key": "ledger.adjusted_push", "params": {"amount": amount, "note": note, "balance": balance}},
         now=now)
    return balance


def expire_due(session: Session, now: datetime, months: int) -> dict[int, int]:
    """Scheduler job: expire points earned `months` ago or earlier, oldest first. Idempotent."""
    return points.expire_due(session, now, months)


def queue_expiry_reminders(session: Session, now: datetime, months: int, tz: str = "Asia/Shanghai") -> int:
    """Scheduler job: tell partners whose points expire within a month. Returns the rows queued.

    One message per partner and set of expiring credits: calling it again (the same day, or the
    next) queues nothing new until further points come within a month of expiring.
    """
    total = 0
    for soon in points.expiring_soon(session, now, months):
        balance = points.balance(session, soon.partner_id)

        def context(r: Recipient, soon: points.Expiring = soon, balance: int = balance) -> dict[str, object]:
            return {"amount": soon.amount, "at": soon.first_at, "balance": balance, "tz": tz}

        def key(pid: int, s: points.Expiring = soon) -> str:
            return f"points:expiring:{pid}:{s.newest_entry_id}"

        total += push(session, [soon.partner_id], key=key,
                      kind="points", template="points_expiring", context=context, now=now)
    return total
