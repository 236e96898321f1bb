"""The points ledger: balances, debits that can never overdraw, admin adjustments, FIFO expiry.

The balance is the sum of a partner's `PointsEntry` amounts (DESIGN §3 rule 3); nothing stores it.
Credits (positive entries) can never make a balance negative, so they are written freely. Every
debit (spent, expired, negative adjustment) first takes the partner's row lock with a no-op
UPDATE, then reads the balance, then writes: on PostgreSQL concurrent debits of one partner queue
on the row lock (and, in READ COMMITTED, the balance read after the lock sees what the previous
holder committed); on SQLite the UPDATE takes the database's single write lock. Either way two
debits are never decided on the same balance.

Expiry is first-in, first-out: debits consume the oldest credits first, and what is left of a
credit `months` months after it was written expires. A refund is a new credit (fresh life).
"""

from __future__ import annotations

import calendar
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlmodel import Session, col

from models.errors import DataError
from models.tables import Partner, PointsEntry
from models.values import as_utc

KINDS = ("earned", "spent", "refunded", "adjusted", "expired")
MAX_ADJUST = 10_000_000
MAX_NOTE = 200


class NotEnoughPoints(DataError):
    """A debit larger than the balance; nothing was written."""

    def __init__(self, balance: int, need: int) -> None:
        super().__init__("ledger.not_enough", balance=balance, need=need, short=need - balance)
        self.balance = balance
        self.need = need


def balance(session: Session, partner_id: int) -> int:
    stmt = select(func.coalesce(func.sum(col(PointsEntry.amount)), 0)).where(col(PointsEntry.partner_id) == partner_id)
    return int(session.execute(stmt).scalar_one())


def balances(session: Session, partner_ids: Iterable[int] | None = None) -> dict[int, int]:
    """Balance per partner that has any entry (optionally only the given partners)."""
    stmt = select(col(PointsEntry.partner_id), func.sum(col(PointsEntry.amount))).group_by(col(PointsEntry.partner_id))
    if partner_ids is not None:
        stmt = stmt.where(col(PointsEntry.partner_id).in_(list(partner_ids)))
    return {int(pid): int(total) for pid, total in session.execute(stmt)}


def entries(session: Session, partner_id: int, limit: int | None = None) -> list[PointsEntry]:
    """A partner's entries, newest first."""
    stmt = (select(PointsEntry).where(col(PointsEntry.partner_id) == partner_id)
            .order_by(col(PointsEntry.created_at).desc(), col(PointsEntry.id).desc()))
    if limit is not None:
        stmt = stmt.limit(limit)
    return list(session.execute(stmt).scalars())


def lock_partner(session: Session, partner_id: int) -> None:
    """Serialise debits of one partner (see the module docstring). Raises for an unknown partner."""
    done = session.execute(update(Partner).where(col(Partner.id) == partner_id).values(active=col(Partner.active)))
    if done.rowcount != 1:  # type: ignore[attr-defined]
        raise DataError("error.unknown_partner", value=str(partner_id))


def credit(session: Session, partner_id: int, amount: int, kind: str, reason: dict[str, Any], source_key: str,
           now: datetime) -> PointsEntry:
    """Write a positive entry (earned, refunded, positive adjustment)."""
    if amount <= 0 or kind not in KINDS:
        raise ValueError(f"not a credit: {kind} {amount}")
    return write_entry(session, partner_id, amount, kind, reason, source_key, now)


def debit(session: Session, partner_id: int, amount: int, kind: str, reason: dict[str, Any], source_key: str,
          now: datetime) -> PointsEntry:
    """Write a negative entry of `amount` points, or raise `NotEnoughPoints` and write nothing."""
    if amount <= 0 or kind not in KINDS:
        raise ValueError(f"not a debit: {kind} {amount}")
    lock_partner(session, partner_id)
    have = balance(session, partner_id)
    if have < amount:
        raise NotEnoughPoints(have, amount)
    return write_entry(session, partner_id, -amount, kind, reason, source_key, now)


def write_entry(session: Session, partner_id: int, amount: int, kind: str, reason: dict[str, Any],
                source_key: str, now: datetime) -> PointsEntry:
    """Append an entry as is: a negative one only while holding the partner's lock, balance checked."""
    entry = PointsEntry(partner_id=partner_id, kind=kind, amount=amount, reason=reason, source_key=source_key,
                        created_at=now)
    session.add(entry)
    session.flush()
    return entry


def parse_amount(text: str) -> int:
    """`+100`, `-50`, `100` to a non-zero integer within the adjustment limit."""
    raw = text.strip().replace("＋", "+").replace("－", "-")
    digits = raw[1:] if raw[:1] in "+-" else raw
    if not digits.isascii() or not digits.isdigit() or int(digits) == 0 or int(digits) > MAX_ADJUST:
        raise DataError("ledger.bad_amount", value=text[:20], max=MAX_ADJUST)
    return -int(digits) if raw.startswith("-") else int(digits)


def adjust(session: Session, partner_id: int, amount: int, note: str, by: int | None, now: datetime) -> PointsEntry:
    """An admin's correction, with a reason; a negative one cannot take the balance below zero."""
    note = " ".join(note.split())
    if not note:
        raise DataError("ledger.note_required")
    if len(note) > MAX_NOTE:
        raise DataError("ledger.note_too_long", max=MAX_NOTE)
    if amount == 0 or abs(amount) > MAX_ADJUST:
        raise DataError("ledger.bad_amount", value=str(amount), max=MAX_ADJUST)
    reason = {"code": "points.adjusted", "note": note, "by": by}
    key = f"adjust:{partner_id}:{uuid.uuid4().hex}"
    if amount > 0:
        return credit(session, partner_id, amount, "adjusted", reason, key, now)
    try:
        return debit(session, partner_id, -amount, "adjusted", reason, key, now)
    except NotEnoughPoints as short:  # told to the admin: about the partner, not "you have"
        partner = session.get(Partner, partner_id)
        raise DataError("ledger.adjust_not_enough", code=partner.code if partner else partner_id,
                        name=partner.name if partner else "", need=short.need, balance=short.balance,
                        short=short.need - short.balance) from None


# --- expiry ----------------------------------------------------------------------------------


def add_months(value: datetime, months: int) -> datetime:
    """The same day and time `months` later (the last day of a shorter month: Jan 31 + 1 = Feb 28)."""
    index = value.month - 1 + months
    year, month = value.year + index // 12, index % 12 + 1
    return value.replace(year=year, month=month, day=min(value.day, calendar.monthrange(year, month)[1]))


@dataclass(frozen=True)
class Lot:
    """What is left of one credit after the debits consumed the older credits first."""

    entry_id: int
    earned_at: datetime
    amount: int
    left: int


def lots(rows: Sequence[tuple[int, datetime, int]]) -> list[Lot]:
    """FIFO: rows are (id, created_at, amount) of one partner in any order."""
    ordered = sorted(((as_utc(at), eid, amount) for eid, at, amount in rows))
    debt = -sum(amount for _at, _eid, amount in ordered if amount < 0)
    out = []
    for at, eid, amount in ordered:
        if amount <= 0:
            continue
        used = min(debt, amount)
        debt -= used
        out.append(Lot(eid, at, amount, amount - used))
    return out


def _rows(session: Session, partner_id: int) -> list[tuple[int, datetime, int]]:
    stmt = select(col(PointsEntry.id), col(PointsEntry.created_at), col(PointsEntry.amount)).where(
        col(PointsEntry.partner_id) == partner_id)
    return [(int(i), at, int(a)) for i, at, a in session.execute(stmt)]


def _candidates(session: Session, older_than: datetime) -> list[int]:
    stmt = (select(col(PointsEntry.partner_id)).where(col(PointsEntry.amount) > 0,
                                                      col(PointsEntry.created_at) <= older_than)
            .distinct().order_by(col(PointsEntry.partner_id)))
    return [int(pid) for pid in session.execute(stmt).scalars()]


def expire_due(session: Session, now: datetime, months: int) -> dict[int, int]:
    """Expire, for every partner, what is left of credits written `months` or more months ago.

    Returns {partner id: points expired}. Idempotent: a second call at the same `now` finds nothing
    left to expire. `months <= 0` means points never expire.
    """
    if months <= 0:
        return {}
    expired: dict[int, int] = {}
    # add_months(at, months) <= now implies at <= now - 28 * months days: a cheap superset.
    for pid in _candidates(session, now - timedelta(days=28 * months)):
        due = [lot for lot in lots(_rows(session, pid)) if lot.left > 0 and add_months(lot.earned_at, months) <= now]
        if not due:
            continue
        lock_partner(session, pid)
        rows = _rows(session, pid)  # again, under the lock
        due = [lot for lot in lots(rows) if lot.left > 0 and add_months(lot.earned_at, months) <= now]
        amount = sum(lot.left for lot in due)
        if amount <= 0:
            continue
        # The newest entry id only grows (this very entry raises it), so the key never repeats.
        key = f"expiry:{pid}:{max(eid for eid, _at, _a in rows)}"
        reason = {"code": "points.expired", "months": months,
                  "earned_through": max(lot.earned_at for lot in due).isoformat()}
        write_entry(session, pid, -amount, "expired", reason, key, now)
        expired[pid] = amount
    return expired


@dataclass(frozen=True)
class Expiring:
    partner_id: int
    amount: int
    first_at: datetime  # when the earliest of these points expire
    newest_entry_id: int  # the newest credit concerned (a reminder's idempotency key)


def expiring_soon(session: Session, now: datetime, months: int, notice_months: int = 1) -> list[Expiring]:
    """Per partner, the points that will expire within `notice_months` from now (none when months <= 0)."""
    if months <= 0:
        return []
    found = []
    for pid in _candidates(session, now - timedelta(days=28 * max(months - notice_months, 0))):
        soon = [lot for lot in lots(_rows(session, pid))
                if lot.left > 0 and add_months(lot.earned_at, months - notice_months) <= now
                < add_months(lot.earned_at, months)]
        if soon:
            found.append(Expiring(pid, sum(lot.left for lot in soon),
                                  min(add_months(lot.earned_at, months) for lot in soon),
                                  max(lot.entry_id for lot in soon)))
    return found
