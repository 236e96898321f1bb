"""The audit log: every action taken in the web console, who took it, when, on what."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func
from sqlmodel import Session, col, select

from models.tables import AuditEntry, Partner


@dataclass(frozen=True)
class AuditLine:
    id: int
    at: datetime
    who_code: str | None
    who_name: str | None
    action: str
    object_kind: str | None
    object_ref: str | None
    details: dict[str, Any]


def record(session: Session, *, partner_id: int | None, action: str, now: datetime, object_kind: str | None = None,
           object_ref: str | None = None, details: dict[str, Any] | None = None) -> None:
    """Write one entry, in the caller's transaction (an action rolled back leaves no entry)."""
    session.add(AuditEntry(at=now, partner_id=partner_id, action=action, object_kind=object_kind,
                           object_ref=None if object_ref is None else str(object_ref)[:128], details=details or {}))
    session.flush()


def page(session: Session, *, offset: int, limit: int) -> tuple[list[AuditLine], int]:
    """The newest entries first, `limit` of them from `offset`, and how many there are in all."""
    total = session.exec(select(func.count()).select_from(AuditEntry)).one()
    rows = session.exec(select(AuditEntry, Partner.code, Partner.name)
                        .outerjoin(Partner, col(Partner.id) == col(AuditEntry.partner_id))
                        .order_by(col(AuditEntry.id).desc()).offset(offset).limit(limit)).all()
    lines = [AuditLine(e.id, e.at, code, name, e.action, e.object_kind, e.object_ref, e.details)
             for e, code, name in rows]
    return lines, int(total)
