"""Correcting the sales ledger with entries, never by editing a sale (a return, a refund, a typo).

A reversal is a sale row that carries `reverses` (the id of the sale it cancels) and the negatives
of its amount, units and margin, for the same partner, customer and moment — so it falls in the
period the original counted in. The original stays as it was. Standings count a reversal's order
and rating negatively (`models.standings.activity`), so a sale and its reversal add up to nothing.
Negative amounts exist only as reversals; a sale is reversed at most once (a unique index).

Open contests whose period holds the sale are marked for a rebuild at once; a closed contest's
frozen results do not change, and the reversal is counted with its late sales.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlmodel import Session, col

from models.errors import DataError
from models.standings import mark_open_contests_dirty
from models.tables import Contest, Sale
from models.values import as_utc

VOID_PREFIX = "void:"
MAX_REASON = 500


def find_sale(session: Session, ref: str) -> Sale:
    """A sale by its id in the source system (the sales file's `id`)."""
    sale: Sale | None = session.execute(select(Sale).where(col(Sale.ext_id) == ref.strip())).scalars().first()
    if sale is None:
        raise DataError("error.unknown_sale", value=ref)
    return sale


def void(session: Session, ref: str, *, reason: str, now: datetime) -> Sale:
    """Write the reversal of sale `ref`; refused for a reversal itself, or a sale already reversed."""
    reason = reason.strip()
    if not reason:
        raise DataError("error.void_reason")
    if len(reason) > MAX_REASON:
        raise DataError("error.void_reason_long", max=MAX_REASON)
    original = find_sale(session, ref)
    if original.reverses is not None:
        raise DataError("error.void_reversal", value=ref)
    done = session.execute(select(col(Sale.ext_id)).where(col(Sale.reverses) == original.id)).scalars().first()
    if done is not None:
        raise DataError("error.void_again", value=ref, reversal=done)
    reversal = Sale(ext_id=f"{VOID_PREFIX}{original.ext_id}"[:128], partner_id=original.partner_id,
                    occurred_at=original.occurred_at, amount_fen=-original.amount_fen, units=-original.units,
                    margin_fen=-original.margin_fen if original.margin_fen is not None else None,
                    customer=original.customer, satisfaction=original.satisfaction, imported_at=now,
                    reverses=original.id, reason=reason)
    session.add(reversal)
    session.flush()
    moment = as_utc(original.occurred_at)
    mark_open_contests_dirty(session, moment, moment)
    return reversal


def late_corrections(session: Session, contest: Contest) -> int:
    """Reversals of the period written after the contest closed (they are among its late sales)."""
    if contest.closed_at is None:
        return 0
    stmt = select(func.count()).select_from(Sale).where(
        col(Sale.reverses).is_not(None), col(Sale.occurred_at) >= contest.start_at,
        col(Sale.occurred_at) < contest.end_at, col(Sale.imported_at) > contest.closed_at)
    return int(session.execute(stmt).scalar_one())
