"""Queries about broadcast drafts."""

from __future__ import annotations

from sqlalchemy import select, update
from sqlmodel import Session, col

from models.kinds import BroadcastStatus
from models.tables import Broadcast


def broadcast_by_id(session: Session, *, broadcast_id: int) -> Broadcast | None:
    """The broadcast as an ORM object, for code that changes it."""
    return session.get(Broadcast, broadcast_id)


def cancel_drafts(session: Session, *, created_by: int) -> None:
    """An admin's unconfirmed drafts cancelled (a new preview replaces them)."""
    session.execute(update(Broadcast).where(col(Broadcast.created_by) == created_by,
                                            col(Broadcast.status) == BroadcastStatus.DRAFT)
                    .values(status=BroadcastStatus.CANCELLED))


def newest_draft(session: Session, *, created_by: int) -> Broadcast | None:
    return session.execute(select(Broadcast).where(col(Broadcast.created_by) == created_by,
                                                   col(Broadcast.status) == BroadcastStatus.DRAFT)
                           .order_by(col(Broadcast.id).desc()).limit(1)).scalars().first()
