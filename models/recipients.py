"""Who gets a push: each partner's most recently used chat account, optionally within a segment."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlmodel import Session, col

from models import segments
from models.rules import PLATFORM_KEY
from models.tables import ChatIdentity, Partner


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
    A segment's `platform` (broadcasts only) keeps to the accounts on that app: a partner on
    Telegram and WeCom gets a WeCom broadcast on WeCom, whichever they used last.
    """
    seen = func.coalesce(col(ChatIdentity.last_seen_at), col(ChatIdentity.bound_at))
    stmt = (select(col(ChatIdentity.partner_id), col(ChatIdentity.id), col(ChatIdentity.platform),
                   func.coalesce(col(ChatIdentity.chat_ref), col(ChatIdentity.user_ref)), col(Partner.locale), seen)
            .join(Partner, col(Partner.id) == ChatIdentity.partner_id)
            .where(col(ChatIdentity.active).is_(True), col(Partner.active).is_(True)))
    if partner_ids is not None:
        stmt = stmt.where(col(ChatIdentity.partner_id).in_(list(partner_ids)))
    chosen = dict(segment or {})
    platform = chosen.pop(PLATFORM_KEY, None)  # a broadcast's audience may be the accounts on one app
    if platform is not None:
        stmt = stmt.where(col(ChatIdentity.platform) == platform)
    stmt = segments.where(stmt, chosen)
    excluded = list(exclude_identities)
    if excluded:
        stmt = stmt.where(col(ChatIdentity.id).not_in(excluded))
    best: dict[int, tuple[Any, Recipient]] = {}
    for pid, iid, platform, chat_ref, locale, last in session.execute(stmt.order_by(col(ChatIdentity.id))):
        current = best.get(pid)
        if current is None or last > current[0]:
            best[pid] = (last, Recipient(pid, iid, platform, chat_ref, locale))
    return [r for _, r in sorted(best.values(), key=lambda x: x[1].partner_id)]
