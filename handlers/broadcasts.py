"""Announcements from admins: draft with a preview and recipient count, confirm, queue in the outbox."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlmodel import Session

from messages.render import render
from models import broadcasts as drafts
from models import outbox, partners
from models.errors import DataError
from models.kinds import BroadcastStatus
from models.recipients import recipients
from models.tables import Broadcast

MAX_TEXT = 2000
DRAFT_TTL = timedelta(minutes=30)


def draft(session: Session, text: str, segment: dict[str, str], created_by: int | None, send_at: datetime,
          now: datetime) -> tuple[Broadcast, int]:
    """Store an unconfirmed broadcast; returns it with the number of partners it would reach."""
    text = text.strip()
    if not text:
        raise DataError("broadcast.empty")
    if len(text) > MAX_TEXT:
        raise DataError("broadcast.too_long", max=MAX_TEXT)
    count = len(recipients(session, segment=segment))
    if created_by is not None:  # a new preview replaces the admin's older unconfirmed ones
        drafts.cancel_drafts(session, created_by=created_by)
    item = Broadcast(text=text, segment=segment, created_by=created_by, created_at=now, send_at=send_at,
                     status=BroadcastStatus.DRAFT, recipients=count)
    session.add(item)
    session.flush()
    return item, count


def confirm(session: Session, broadcast_id: int, now: datetime, by: int | None = None) -> Broadcast:
    """Queue a draft for every recipient (once: the outbox keys are unique per broadcast and partner)."""
    item = drafts.broadcast_by_id(session, broadcast_id=broadcast_id)
    if item is None or (by is not None and item.created_by != by):
        raise DataError("broadcast.not_found", id=broadcast_id)
    if item.status == BroadcastStatus.QUEUED:
        return item
    if item.status != BroadcastStatus.DRAFT:
        raise DataError("broadcast.not_draft", id=broadcast_id)
    people = recipients(session, segment=item.segment)
    texts: dict[str, str] = {}
    rows = []
    for r in people:
        if r.locale not in texts:
            texts[r.locale] = message_text(session, item, r.locale)
        rows.append(outbox.personal(r, key=f"broadcast:{item.id}:partner:{r.partner_id}", kind="broadcast",
                                    batch_id=item.id, payload={"text": texts[r.locale]}, next_attempt_at=item.send_at))
    outbox.queue(session, rows, now)
    item.status, item.recipients, item.confirmed_at = "queued", len(rows), now
    session.add(item)
    session.flush()
    return item


def message_text(session: Session, item: Broadcast, locale: str) -> str:
    """What a recipient in `locale` is sent (the console's preview shows this very text)."""
    sender = partners.partner_by_id(session, partner_id=item.created_by) if item.created_by else None
    return render("broadcast", locale, text=item.text, sender=sender.name if sender else None)


def cancel(session: Session, broadcast_id: int, by: int | None = None) -> Broadcast:
    item = drafts.broadcast_by_id(session, broadcast_id=broadcast_id)
    if item is None or (by is not None and item.created_by != by):
        raise DataError("broadcast.not_found", id=broadcast_id)
    if item.status == BroadcastStatus.DRAFT:
        item.status = "cancelled"
        session.add(item)
    return item


def latest_draft(session: Session, admin_id: int, now: datetime) -> Broadcast | None:
    """The admin's most recent unconfirmed draft, if still fresh (for a typed `确认` on WeChat)."""
    found = drafts.newest_draft(session, created_by=admin_id)
    if found is None:
        return None
    from models.values import as_utc

    return found if as_utc(found.created_at) + DRAFT_TTL >= now else None
