"""What became of the pushes: counts per channel and status, and the reasons of the failures."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlmodel import Session, col

from models.tables import Outbox

FINAL = ("sent", "failed", "blocked", "undeliverable")


def report(session: Session, batch_id: int | None = None, kind: str | None = None,
           since: datetime | None = None) -> dict[str, Any]:
    """Counts per channel and status, and the failure reasons with their counts (of the pushes
    queued at or after `since`, when given)."""
    o = Outbox
    where = []
    if since is not None:
        where.append(col(o.created_at) >= since)
    if batch_id is not None:
        where.append(col(o.batch_id) == batch_id)
    if kind is not None:
        where.append(col(o.kind) == kind)
    counts: dict[str, dict[str, int]] = {}
    for platform, status, n in session.execute(select(col(o.platform), col(o.status), func.count()).where(*where)
                                               .group_by(col(o.platform), col(o.status))):
        counts.setdefault(platform, {s: 0 for s in ("pending", "sending", *FINAL)})[status] = int(n)
    reasons = [{"platform": p, "status": s, "reason": e, "count": int(n)} for p, s, e, n in session.execute(
        select(col(o.platform), col(o.status), col(o.last_error), func.count()).where(*where,
                                                                                      col(o.last_error).is_not(None),
                                                                       col(o.status).in_(("failed", "blocked",
                                                                                     "undeliverable", "pending")))
        .group_by(col(o.platform), col(o.status), col(o.last_error)).order_by(func.count().desc()))]
    return {"channels": counts, "reasons": reasons}
