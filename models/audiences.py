"""What the console shows of a push's audience and of a broadcast's delivery: the segment's choices,
who the recipients are (name, code, their account's WeChat window), the broadcasts, and who did not
get one and why. The recipients themselves are `models.recipients.recipients` (one rule for the chat,
the CLI and the console)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlmodel import Session, col

from models.kinds import BroadcastStatus, OutboxStatus
from models.recipients import Recipient
from models.tables import Broadcast, ChatIdentity, Outbox, Partner, Team

CHUNK = 1000  # ids per IN (...): well under both databases' limits on bound parameters


@dataclass(frozen=True)
class SegmentChoices:
    """The values each segment key has among active partners now (for the audience's pickers)."""

    teams: list[tuple[str, str]]
    regions: list[str]
    industries: list[str]
    sizes: list[str]


def segment_choices(*, session: Session) -> SegmentChoices:
    def distinct(column: Any) -> list[str]:
        stmt = select(column).where(col(Partner.active).is_(True), column.is_not(None)).distinct().order_by(column)
        return [str(v) for (v,) in session.execute(stmt).all() if str(v).strip()]

    teams = [(str(c), str(n)) for c, n in session.execute(select(col(Team.code), col(Team.name))
                                                          .order_by(col(Team.code))).all()]
    return SegmentChoices(teams, distinct(col(Partner.region)), distinct(col(Partner.industry)),
                          distinct(col(Partner.size)))


@dataclass(frozen=True)
class Reached:
    """One recipient as the preview lists them: who, on which app, and their account's WeChat window."""

    partner_id: int
    code: str
    name: str
    platform: str
    locale: str
    last_seen_at: datetime | None
    window_pushes: int


def described(*, session: Session, people: Sequence[Recipient]) -> list[Reached]:
    """`people` (from `recipients`) with their partner's code and name and their account's last
    message and pushes since it, in the same order."""
    found: dict[int, tuple[str, str, datetime | None, int]] = {}
    ids = [r.identity_id for r in people]
    for start in range(0, len(ids), CHUNK):
        stmt = (select(col(ChatIdentity.id), col(Partner.code), col(Partner.name), col(ChatIdentity.last_seen_at),
                       col(ChatIdentity.window_pushes))
                .join(Partner, col(Partner.id) == ChatIdentity.partner_id)
                .where(col(ChatIdentity.id).in_(ids[start:start + CHUNK])))
        for iid, code, name, seen, pushes in session.execute(stmt).all():
            found[int(iid)] = (str(code), str(name), seen, int(pushes or 0))
    return [Reached(r.partner_id, *found[r.identity_id][:2], r.platform, r.locale, *found[r.identity_id][2:])
            for r in people if r.identity_id in found]


def broadcasts_page(*, session: Session, offset: int, limit: int) -> tuple[list[Broadcast], int]:
    """Broadcasts that were sent or are scheduled (drafts and cancelled ones aside), newest first."""
    where = col(Broadcast.status) == BroadcastStatus.QUEUED
    total = int(session.execute(select(func.count()).select_from(Broadcast).where(where)).scalar_one())
    rows = session.execute(select(Broadcast).where(where).order_by(col(Broadcast.id).desc())
                           .offset(offset).limit(limit)).scalars().all()
    return list(rows), total


def batch_counts(*, session: Session, batch_ids: Sequence[int], kind: str) -> dict[int, dict[str, int]]:
    """Per batch (a broadcast's id): its pushes by status."""
    out: dict[int, dict[str, int]] = {}
    if not batch_ids:
        return out
    stmt = (select(col(Outbox.batch_id), col(Outbox.status), func.count())
            .where(col(Outbox.kind) == kind, col(Outbox.batch_id).in_(list(batch_ids)))
            .group_by(col(Outbox.batch_id), col(Outbox.status)))
    for batch, status, n in session.execute(stmt).all():
        out.setdefault(int(batch), {})[str(status)] = int(n)
    return out


@dataclass(frozen=True)
class Missed:
    """A push that has not reached its partner: finally (failed, blocked, undeliverable) or not yet
    (pending again after an error, `retrying`)."""

    code: str
    name: str
    platform: str
    status: str
    reason: str | None
    attempts: int


NOT_REACHED = (OutboxStatus.FAILED, OutboxStatus.BLOCKED, OutboxStatus.UNDELIVERABLE)


def missed(*, session: Session, batch_id: int, kind: str, limit: int) -> tuple[list[Missed], int]:
    """Who did not get the batch's push and why (those given up on first, then those being retried),
    at most `limit` of them, and how many there are in all."""
    given_up = col(Outbox.status).in_(NOT_REACHED)
    retrying = (col(Outbox.status).in_((OutboxStatus.PENDING, OutboxStatus.SENDING))
                & col(Outbox.last_error).is_not(None))
    where = (col(Outbox.kind) == kind, col(Outbox.batch_id) == batch_id, given_up | retrying)
    total = int(session.execute(select(func.count()).select_from(Outbox).where(*where)).scalar_one())
    stmt = (select(col(Partner.code), col(Partner.name), col(Outbox.platform), col(Outbox.status),
                   col(Outbox.last_error), col(Outbox.attempts))
            .join(Partner, col(Partner.id) == Outbox.partner_id).where(*where)
            .order_by(given_up.desc(), col(Outbox.platform), col(Partner.code)).limit(limit))
    rows = [Missed(str(code), str(name), str(platform),
                   str(status) if status in NOT_REACHED else "retrying", error, int(attempts))
            for code, name, platform, status, error, attempts in session.execute(stmt).all()]
    return rows, total
