"""The outbox's leases: delivery workers claim due rows, hold them while sending, and record what happened.

A claimed row is `sending` with a lease (`lease_until`, `leased_by`); a crashed worker's lease runs
out and another worker claims the row again, which bounds duplicates to the rows in flight.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Connection, Text, and_, case, cast, or_, select, update
from sqlalchemy.orm import aliased
from sqlmodel import col

from models.kinds import OutboxStatus
from models.tables import ChatIdentity, Outbox
from models.values import utcnow

_CLAIMED = (col(Outbox.id), col(Outbox.platform), col(Outbox.chat_ref), col(Outbox.is_group), col(Outbox.payload),
            col(Outbox.identity_id),
            col(Outbox.partner_id), col(Outbox.attempts), col(Outbox.batch_id))


def claim(conn: Connection, worker: str, limit: int, lease: timedelta, now: datetime | None = None,
          platforms: Sequence[str] | None = None) -> list[Outbox]:
    """Take up to `limit` due rows for this worker: pending ones whose time has come, and rows
    whose sender's lease ran out (a crashed or killed worker). Oldest first.

    On PostgreSQL, `FOR UPDATE SKIP LOCKED` lets several workers claim side by side without
    blocking or double-claiming; on SQLite the single writer lock does the same job.
    """
    now = now or utcnow()
    o = Outbox
    pick = select(col(o.id)).where(_due(worker, now)).order_by(col(o.id)).limit(limit)
    if platforms is not None:
        pick = pick.where(col(o.platform).in_(list(platforms)))
    return _take(conn, pick, worker, now + lease)


def claim_alike(conn: Connection, worker: str, platform: str, seeds: Sequence[int], limit: int, lease: timedelta,
                now: datetime | None = None, batches: Sequence[int] = (), until_id: int | None = None) -> list[Outbox]:
    """Also take due rows to private chats of `platform` that carry the same payload as one of `seeds`
    (rows this worker just claimed), so that a channel which can name many recipients in one call
    (WeCom) gets them together: rows of the broadcasts `batches`, and rows with ids up to `until_id`,
    after the first seed, oldest first, at most `limit`.

    The payloads are compared as the stored JSON text: rows queued together with one payload have the
    same text, and different contents never compare equal. Same leases and locking as `claim`.
    """
    if not seeds or limit <= 0 or (not batches and until_id is None):
        return []
    now = now or utcnow()
    o, seed = Outbox, aliased(Outbox)
    reach: list[ColumnElement[bool]] = []
    if batches:
        reach.append(col(o.batch_id).in_(list(batches)))
    if until_id is not None:
        reach.append(col(o.id) <= until_id)
    same = cast(o.payload, Text).in_(select(cast(seed.payload, Text)).where(col(seed.id).in_(list(seeds))))
    pick = (select(col(o.id)).where(col(o.id) > min(seeds), col(o.platform) == platform, col(o.is_group).is_(False),
                                    or_(*reach), _due(worker, now), same)
            .order_by(col(o.id)).limit(limit))
    return _take(conn, pick, worker, now + lease)


def _take(conn: Connection, pick: Any, worker: str, lease_until: datetime) -> list[Outbox]:
    """Lease the rows `pick` selects to `worker`; their fields as the worker needs them."""
    if conn.dialect.name == "postgresql":
        pick = pick.with_for_update(skip_locked=True)
    # A CTE, not `id IN (subquery … LIMIT n)`: PostgreSQL may run such a subquery more than once
    # and so update more than n rows (seen: 205 claimed for 16 asked).
    picked = pick.cte("picked")
    stmt = (update(Outbox).where(col(Outbox.id) == picked.c.id)
            .values(status=OutboxStatus.SENDING, lease_until=lease_until, leased_by=worker)
            .returning(*_CLAIMED))
    return list(conn.execute(stmt).all())  # type: ignore[arg-type]


def _due(worker: str, now: datetime) -> Any:
    """Rows ready to be claimed by `worker`: pending ones whose time has come, and rows whose sender's
    lease ran out — but never by the worker that holds it: its row is still in its hands (waiting
    for a rate slot), and claiming it again would send it twice."""
    o = Outbox
    return or_(and_(col(o.status) == OutboxStatus.PENDING, col(o.next_attempt_at) <= now),
               and_(col(o.status) == OutboxStatus.SENDING, col(o.lease_until) < now, col(o.leased_by) != worker))


def mark(conn: Connection, ids: Sequence[int], worker: str, now: datetime | None = None, **values: Any) -> int:
    """Record an outcome for rows this worker still holds (a lost lease means another worker owns it)."""
    if not ids:
        return 0
    stmt = (update(Outbox).where(col(Outbox.id).in_(list(ids)), col(Outbox.leased_by) == worker,
                                 col(Outbox.status) == OutboxStatus.SENDING)
            .values(lease_until=None, **values))
    return int(conn.execute(stmt).rowcount)


def renew(conn: Connection, worker: str, lease_until: datetime) -> int:
    """Extend the lease of the rows `worker` holds (still `sending` and its own): alive, it keeps them."""
    stmt = (update(Outbox).where(col(Outbox.leased_by) == worker, col(Outbox.status) == OutboxStatus.SENDING)
            .values(lease_until=lease_until))
    return int(conn.execute(stmt).rowcount)


def release(conn: Connection, *, worker: str, now: datetime) -> None:
    """Give back the rows a stopping worker still holds (`sending`, its own), due at once unless
    they had a later time, so they need not wait for the lease to run out."""
    conn.execute(update(Outbox).where(col(Outbox.leased_by) == worker, col(Outbox.status) == OutboxStatus.SENDING)
                 .values(status=OutboxStatus.PENDING, lease_until=None,
                         next_attempt_at=case((col(Outbox.next_attempt_at).is_(None), now),
                                              else_=col(Outbox.next_attempt_at))))


def deactivate_identity(conn: Connection, identity_id: int) -> None:
    """The user blocked the bot: stop pushing to that account, and drop what is still queued for it."""
    conn.execute(update(ChatIdentity).where(col(ChatIdentity.id) == identity_id).values(active=False))
    conn.execute(update(Outbox).where(col(Outbox.identity_id) == identity_id,
                                      col(Outbox.status) == OutboxStatus.PENDING)
                 .values(status=OutboxStatus.BLOCKED, last_error="blocked_by_user"))
