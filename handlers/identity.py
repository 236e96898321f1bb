"""Who is asking: chat identities, binding with invite codes, and the reply language."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import bindparam, select, update
from sqlmodel import Session

from handlers.types import ChatConfig, Incoming
from models.tables import ChatIdentity, Invite, Partner
from models.values import as_utc

LOCALES = ("zh", "en")


@dataclass
class Asker:
    incoming: Incoming
    partner: Partner | None
    locale: str

    @property
    def role(self) -> str:
        return self.partner.role if self.partner else "guest"


def locale_from_hint(hint: str | None, default: str) -> str:
    if hint:
        lang = hint.lower()[:2]
        if lang in LOCALES:
            return lang
    return default


# Built once: every message asks it, and building the statement costs more than running it.
_ASKER = (select(ChatIdentity, Partner).join(Partner, Partner.id == ChatIdentity.partner_id)
          .where(ChatIdentity.platform == bindparam("platform"), ChatIdentity.user_ref == bindparam("user_ref"),
                 ChatIdentity.active.is_(True)))


def identify(session: Session, incoming: Incoming, config: ChatConfig, now: datetime) -> Asker:
    """The partner behind this chat account (if bound and active), with their language."""
    row = session.execute(_ASKER, {"platform": incoming.platform, "user_ref": incoming.user_ref}).first()
    identity, partner = (row[0], row[1]) if row is not None else (None, None)
    if partner is not None and not partner.active:
        partner = None
    if identity is not None and not incoming.is_group and _worth_writing(identity, incoming, now):
        session.execute(update(ChatIdentity).where(ChatIdentity.id == identity.id)
                        .values(last_seen_at=now, chat_ref=incoming.chat_ref, window_pushes=0))
    if partner is not None:
        return Asker(incoming, partner, partner.locale)
    return Asker(incoming, None, locale_from_hint(incoming.locale_hint, config.default_locale))


SEEN_PRECISION = timedelta(minutes=1)


def _worth_writing(identity: ChatIdentity, incoming: Incoming, now: datetime) -> bool:
    """Record the visit unless nothing would change: `last_seen_at` to the minute (it drives
    WeChat's 48-hour window and the choice of app to push on), the push count, the chat.

    Skipping the write keeps a burst of questions from one person off SQLite's single write lock.
    """
    last = as_utc(identity.last_seen_at) if identity.last_seen_at else None
    return (last is None or now - last >= SEEN_PRECISION or identity.window_pushes != 0
            or identity.chat_ref != incoming.chat_ref)


def bind(session: Session, incoming: Incoming, code: str, now: datetime) -> tuple[str, Partner | None]:
    """Redeem an invite code for this chat account. Returns (outcome key, partner).

    Outcomes: `bound`, `not_found`, `used`, `expired`. Re-binding an account to another partner
    with a fresh invite is allowed (a shared phone changes hands); the old binding is replaced.
    The invite is claimed with a conditional UPDATE so two simultaneous uses cannot both succeed.
    """
    invite = session.execute(select(Invite).where(Invite.code == code.upper())).scalars().first()
    if invite is None:
        return "not_found", None
    if invite.used_at is not None:
        return "used", None
    if as_utc(invite.expires_at) <= now:
        return "expired", None
    claimed = session.execute(update(Invite).where(Invite.id == invite.id, Invite.used_at.is_(None))
                              .values(used_at=now))
    if claimed.rowcount != 1:  # type: ignore[attr-defined]
        return "used", None
    partner = session.get(Partner, invite.partner_id)
    identity = session.execute(select(ChatIdentity).where(
        ChatIdentity.platform == incoming.platform, ChatIdentity.user_ref == incoming.user_ref)).scalars().first()
    if identity is None:
        identity = ChatIdentity(partner_id=invite.partner_id, platform=incoming.platform,
                                user_ref=incoming.user_ref, chat_ref=incoming.chat_ref, bound_at=now,
                                last_seen_at=now)
        session.add(identity)
    else:
        identity.partner_id, identity.active, identity.bound_at = invite.partner_id, True, now
        identity.chat_ref, identity.last_seen_at = incoming.chat_ref, now
    session.flush()
    return "bound", partner
