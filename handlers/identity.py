"""Who is asking: chat identities, binding with invite codes, and the reply language."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property

from sqlmodel import Session

from handlers.types import ChatConfig, Incoming
from messages.locales import locale_for
from models import identities, partners
from models.identities import BindLimits, bind_throttled, record_bind_failure
from models.rows import Member
from models.tables import Partner

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
        return partners.partner_by_id(self.session, partner_id=self.member.id)


def identify(session: Session, incoming: Incoming, config: ChatConfig, now: datetime) -> Asker:
    """The partner behind this chat account (if bound and active), with their language."""
    found = identities.asker(session, platform=incoming.platform, user_ref=incoming.user_ref)
    member = found[1] if found is not None and found[1].active else None
    if found is not None and not incoming.is_group and identities.worth_recording(
            found[0], chat_ref=incoming.chat_ref, now=now):
        identities.record_visit(session, identity_id=found[0].identity_id, chat_ref=incoming.chat_ref, now=now)
    if member is not None:
        return Asker(incoming, member, member.locale, session)
    return Asker(incoming, None, locale_for(incoming.locale_hint, config.default_locale), session)


def bind(session: Session, incoming: Incoming, code: str, now: datetime,
         limits: BindLimits = BindLimits()) -> tuple[str, Partner | None]:
    """Redeem an invite code for this chat account. Returns (outcome key, partner).

    Outcomes: `bound`, `not_found`, `used`, `expired`, `throttled`. Re-binding an account to
    another partner with a fresh invite is allowed (a shared phone changes hands); the old
    binding is replaced. The invite is claimed so two simultaneous uses cannot both succeed
    (`models.identities.redeem_invite`). Every failure counts against the account (`models.identities`),
    and past the limits every try is `throttled` before the code is even looked at.
    """
    account = f"{incoming.platform}:{incoming.user_ref}"
    if bind_throttled(session, incoming.platform, incoming.user_ref, now, limits):
        log.warning("bind refused: too many failed binds (account %s, or over all accounts)", account)
        return "throttled", None
    outcome = identities.redeem_invite(session, code=code, now=now)
    if isinstance(outcome, str):
        record_bind_failure(session, incoming.platform, incoming.user_ref, now, limits)
        log.warning("bind failed (%s) for account %s", outcome, account)  # never the code: it may be nearly right
        return outcome, None
    invite = outcome
    partner = partners.partner_by_id(session, partner_id=invite.partner_id)
    identities.bind_account(session, partner_id=invite.partner_id, platform=incoming.platform,
                            user_ref=incoming.user_ref, chat_ref=incoming.chat_ref, now=now)
    return "bound", partner
