"""Who is asking: chat identities, binding with invite codes, and the reply language."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, fields
from datetime import datetime, timedelta
from functools import cached_property

from sqlalchemy import bindparam, select, update
from sqlmodel import Session, col

from handlers.types import ChatConfig, Incoming
from messages.locales import locale_for
from models.db import read, table_of
from models.identities import BindLimits, bind_throttled, record_bind_failure
from models.rows import Member
from models.tables import ChatIdentity, Invite, Partner
from models.values import as_utc

log = logging.getLogger("mianzi.identity")


@dataclass
class Asker:
    incoming: Incoming
    member: Member | None
    locale: str
    session: Session | None = field(default=None, repr=False, compare=False)

    @property
    def role(self) -> str:
        return self.member.role if self.member else "guest"

    @cached_property
    def partner(self) -> Partner | None:
        """The bound partner as an ORM object (loaded on first use), for handlers that change it."""
        if self.member is None or self.session is None:
            return None
        return self.session.get(Partner, self.member.id)


# Built once: every message asks them, and building a statement costs more than running it.
_MEMBER_COLUMNS = [table_of(Partner).c[f.name] for f in fields(Member)]
_IDENTITY = table_of(ChatIdentity)
_ASKER = (select(_IDENTITY.c.id, _IDENTITY.c.last_seen_at, _IDENTITY.c.window_pushes, _IDENTITY.c.chat_ref,
                 *_MEMBER_COLUMNS)
          .join_from(_IDENTITY, table_of(Partner), table_of(Partner).c.id == _IDENTITY.c.partner_id)
          .where(_IDENTITY.c.platform == bindparam("platform"), _IDENTITY.c.user_ref == bindparam("user_ref"),
                 _IDENTITY.c.active.is_(True)))
_SEEN = (update(_IDENTITY).where(_IDENTITY.c.id == bindparam("identity"))
         .values(last_seen_at=bindparam("now"), chat_ref=bindparam("chat"), window_pushes=0))


def identify(session: Session, incoming: Incoming, config: ChatConfig, now: datetime) -> Asker:
    """The partner behind this chat account (if bound and active), with their language."""
    row = read(session, _ASKER, {"platform": incoming.platform, "user_ref": incoming.user_ref}).first()
    member = Member(*row[4:]) if row is not None else None
    if member is not None and not member.active:
        member = None
    if row is not None and not incoming.is_group and _worth_writing(row[1], row[2], row[3], incoming, now):
        session.connection().execute(_SEEN, {"identity": row[0], "now": now, "chat": incoming.chat_ref})
    if member is not None:
        return Asker(incoming, member, member.locale, session)
    return Asker(incoming, None, locale_for(incoming.locale_hint, config.default_locale), session)


SEEN_PRECISION = timedelta(minutes=1)


def _worth_writing(last_seen_at: datetime | None, window_pushes: int, chat_ref: str | None, incoming: Incoming,
                   now: datetime) -> bool:
    """Record the visit unless nothing would change: `last_seen_at` to the minute (it drives
    WeChat's 48-hour window and the choice of app to push on), the push count, the chat.

    Skipping the write keeps a burst of questions from one person off SQLite's single write lock.
    """
    last = as_utc(last_seen_at) if last_seen_at else None
    return (last is None or now - last >= SEEN_PRECISION or window_pushes != 0
            or chat_ref != incoming.chat_ref)


def bind(session: Session, incoming: Incoming, code: str, now: datetime,
         limits: BindLimits = BindLimits()) -> tuple[str, Partner | None]:
    """Redeem an invite code for this chat account. Returns (outcome key, partner).

    Outcomes: `bound`, `not_found`, `used`, `expired`, `throttled`. Re-binding an account to
    another partner with a fresh invite is allowed (a shared phone changes hands); the old
    binding is replaced. The invite is claimed with a conditional UPDATE so two simultaneous
    uses cannot both succeed. Every failure counts against the account (`models.identities`),
    and past the limits every try is `throttled` before the code is even looked at.
    """
    account = f"{incoming.platform}:{incoming.user_ref}"
    if bind_throttled(session, incoming.platform, incoming.user_ref, now, limits):
        log.warning("bind refused: too many failed binds (account %s, or over all accounts)", account)
        return "throttled", None
    outcome = _redeem(session, code, now)
    if isinstance(outcome, str):
        record_bind_failure(session, incoming.platform, incoming.user_ref, now, limits)
        log.warning("bind failed (%s) for account %s", outcome, account)  # never the code: it may be nearly right
        return outcome, None
    invite = outcome
    partner = session.get(Partner, invite.partner_id)
    identity = session.execute(select(ChatIdentity).where(
        col(ChatIdentity.platform) == incoming.platform,
        col(ChatIdentity.user_ref) == incoming.user_ref)).scalars().first()
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


def _redeem(session: Session, code: str, now: datetime) -> Invite | str:
    """The invite behind `code`, now marked used; or why not (`not_found`, `used`, `expired`)."""
    invite: Invite | None = session.execute(select(Invite).where(col(Invite.code) == code.upper())).scalars().first()
    if invite is None:
        return "not_found"
    if invite.used_at is not None:
        return "used"
    if as_utc(invite.expires_at) <= now:
        return "expired"
    claimed = session.execute(update(Invite).where(col(Invite.id) == invite.id, col(Invite.used_at).is_(None))
                              .values(used_at=now))
    if claimed.rowcount != 1:  # type: ignore[attr-defined]
        return "used"
    return invite
