"""The outbox: queue pushes idempotently, claim due rows with a lease, record what happened."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Text, and_, cast, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import aliased
from sqlmodel import Session

from models.tables import ChatIdentity, Outbox, Partner
from models.values import utcnow

FINAL = ("sent", "failed", "blocked", "undeliverable")


@dataclass(frozen=True)
class Recipient:
    partner_id: int
    identity_id: int
    platform: str
    chat_ref: str
    locale: str


def recipients(session: Session, partner_ids: Iterable[int] | None = None,
               segment: dict[str, str] | None = None, exclude_identities: Iterable[int] = ()) -> list[Recipient]:
    """Each partner's most recently active chat account (one message per partner, not per app).

    A partner bound on Telegram and WeChat gets a push once, on the app they used last: two
    identical pings on two apps read as noise, and the last-used app is the one they read.
    `exclude_identities` are never picked (news about an account goes to the partner's others).
    """
    seen = func.coalesce(ChatIdentity.last_seen_at, ChatIdentity.bound_at)
    stmt = (select(ChatIdentity.partner_id, ChatIdentity.id, ChatIdentity.platform,
                   func.coalesce(ChatIdentity.chat_ref, ChatIdentity.user_ref), Partner.locale, seen)
            .join(Partner, Partner.id == ChatIdentity.partner_id)
            .where(ChatIdentity.active.is_(True), Partner.active.is_(True)))
    if partner_ids is not None:
        stmt = stmt.where(ChatIdentity.partner_id.in_(list(partner_ids)))
    stmt = apply_segment(stmt, segment or {})
    excluded = list(exclude_identities)
    if excluded:
        stmt = stmt.where(ChatIdentity.id.not_in(excluded))
    best: dict[int, tuple[Any, Recipient]] = {}
    for pid, iid, platform, chat_ref, locale, last in session.execute(stmt.order_by(ChatIdentity.id)):
        current = best.get(pid)
        if current is None or last > current[0]:
            best[pid] = (last, Recipient(pid, iid, platform, chat_ref, locale))
    return [r for _, r in sorted(best.values(), key=lambda x: x[1].partner_id)]


def apply_segment(stmt: Any, segment: dict[str, str]) -> Any:
    """Filter partners by region, city tier, industry, size, team (code) or role."""
    from models.tables import Team

    for key in ("region", "industry", "size", "role"):
        if key in segment:
            stmt = stmt.where(getattr(Partner, key) == segment[key])
    if "city_tier" in segment:
        stmt = stmt.where(Partner.city_tier == int(segment["city_tier"]))
    if "team" in segment:
        stmt = stmt.where(Partner.team_id.in_(select(Team.id).where(Team.code == segment["team"])))
    return stmt


def queue(conn: Connection | Session, rows: Sequence[dict[str, Any]], now: datetime | None = None) -> int:
    """Insert outbox rows, skipping any whose `key` is already queued. Returns how many were new.

    Each row needs key, kind, platform, chat_ref, payload; optional batch_id, partner_id,
    identity_id, is_group, next_attempt_at (default now).
    """
    if not rows:
        return 0
    now = now or utcnow()
    full = [{"batch_id": None, "partner_id": None, "identity_id": None, "is_group": False, "status": "pending",
             "attempts": 0, "next_attempt_at": now, "created_at": now, **r} for r in rows]
    dialect = conn.get_bind().dialect.name if isinstance(conn, Session) else conn.dialect.name
    table = Outbox.__table__
    insert = (postgresql.insert(table) if dialect == "postgresql" else sqlite.insert(table))
    before = _count(conn)
    for start in range(0, len(full), 5000):
        conn.execute(insert.on_conflict_do_nothing(index_elements=["key"]), full[start:start + 5000])
    return _count(conn) - before


def _count(conn: Connection | Session) -> int:
    return int(conn.execute(select(func.count()).select_from(Outbox)).scalar_one())


_CLAIMED = (Outbox.id, Outbox.platform, Outbox.chat_ref, Outbox.is_group, Outbox.payload, Outbox.identity_id,
            Outbox.partner_id, Outbox.attempts, Outbox.batch_id)


def claim(conn: Connection, worker: str, limit: int, lease: timedelta, now: datetime | None = None,
          platforms: Sequence[str] | None = None) -> list[Outbox]:
    """Take up to `limit` due rows for this worker: pending ones whose time has come, and rows
    whose sender's lease ran out (a crashed or killed worker). Oldest first.

    On PostgreSQL, `FOR UPDATE SKIP LOCKED` lets several workers claim side by side without
    blocking or double-claiming; on SQLite the single writer lock does the same job.
    """
    now = now or utcnow()
    o = Outbox
    pick = select(o.id).where(_due(worker, now)).order_by(o.id).limit(limit)
    if platforms is not None:
        pick = pick.where(o.platform.in_(list(platforms)))
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
    reach = []
    if batches:
        reach.append(o.batch_id.in_(list(batches)))
    if until_id is not None:
        reach.append(o.id <= until_id)
    same = cast(o.payload, Text).in_(select(cast(seed.payload, Text)).where(seed.id.in_(list(seeds))))
    pick = (select(o.id).where(o.id > min(seeds), o.platform == platform, o.is_group.is_(False), or_(*reach),
                               _due(worker, now), same)
            .order_by(o.id).limit(limit))
    return _take(conn, pick, worker, now + lease)


def _take(conn: Connection, pick: Any, worker: str, lease_until: datetime) -> list[Outbox]:
    """Lease the rows `pick` selects to `worker`; their fields as the worker needs them."""
    if conn.dialect.name == "postgresql":
        pick = pick.with_for_update(skip_locked=True)
    # A CTE, not `id IN (subquery … LIMIT n)`: PostgreSQL may run such a subquery more than once
    # and so update more than n rows (seen: 205 claimed for 16 asked).
    picked = pick.cte("picked")
    stmt = (update(Outbox).where(Outbox.id == picked.c.id)
            .values(status="sending", lease_until=lease_until, leased_by=worker)
            .returning(*_CLAIMED))
    return list(conn.execute(stmt).all())  # type: ignore[arg-type]


def _due(worker: str, now: datetime) -> Any:
    """Rows ready to be claimed by `worker`: pending ones whose time has come, and rows whose sender's
    lease ran out — but never by the worker that holds it: its row is still in its hands (waiting
    for a rate slot), and claiming it again would send it twice."""
    o = Outbox
    return or_(and_(o.status == "pending", o.next_attempt_at <= now),
               and_(o.status == "sending", o.lease_until < now, o.leased_by != worker))


def mark(conn: Connection, ids: Sequence[int], worker: str, now: datetime | None = None, **values: Any) -> int:
    """Record an outcome for rows this worker still holds (a lost lease means another worker owns it)."""
    if not ids:
        return 0
    stmt = (update(Outbox).where(Outbox.id.in_(list(ids)), Outbox.leased_by == worker,
                                 Outbox.status == "sending")
            .values(lease_until=None, **values))
    return int(conn.execute(stmt).rowcount)  # type: ignore[attr-defined]


def renew(conn: Connection, worker: str, lease_until: datetime) -> int:
    """Extend the lease of the rows `worker` holds (still `sending` and its own): alive, it keeps them."""
    stmt = (update(Outbox).where(Outbox.leased_by == worker, Outbox.status == "sending")
            .values(lease_until=lease_until))
    return int(conn.execute(stmt).rowcount)  # type: ignore[attr-defined]


def deactivate_identity(conn: Connection, identity_id: int) -> None:
    """The user blocked the bot: stop pushing to that account, and drop what is still queued for it."""
    conn.execute(update(ChatIdentity).where(ChatIdentity.id == identity_id).values(active=False))
    conn.execute(update(Outbox).where(Outbox.identity_id == identity_id, Outbox.status == "pending")
                 .values(status="blocked", last_error="blocked_by_user"))


@dataclass
class ReportLine:
    platform: str
    status: str
    count: int


def report(session: Session, batch_id: int | None = None, kind: str | None = None) -> dict[str, Any]:
    """Counts per channel and status, and the failure reasons with their counts."""
    o = Outbox
    where = []
    if batch_id is not None:
        where.append(o.batch_id == batch_id)
    if kind is not None:
        where.append(o.kind == kind)
    counts: dict[str, dict[str, int]] = {}
    for platform, status, n in session.execute(select(o.platform, o.status, func.count()).where(*where)
                                               .group_by(o.platform, o.status)):
        counts.setdefault(platform, {s: 0 for s in ("pending", "sending", *FINAL)})[status] = int(n)
    reasons = [{"platform": p, "status": s, "reason": e, "count": int(n)} for p, s, e, n in session.execute(
        select(o.platform, o.status, o.last_error, func.count()).where(*where, o.last_error.is_not(None),
                                                                       o.status.in_(("failed", "blocked",
                                                                                     "undeliverable", "pending")))
        .group_by(o.platform, o.status, o.last_error).order_by(func.count().desc()))]
    return {"channels": counts, "reasons": reasons}
