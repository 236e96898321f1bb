"""Invite codes and chat identities: how a chat account becomes a known partner."""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

from sqlmodel import Session

from models.tables import Invite, Partner
from models.values import utcnow

# No 0/O, 1/I/L: codes are read aloud and typed on phones.
INVITE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
INVITE_LENGTH = 8


def new_invite(session: Session, partner: Partner, ttl_days: int = 7, now: datetime | None = None) -> Invite:
    """A fresh single-use invite code for the partner, valid `ttl_days`."""
    now = now or utcnow()
    code = "".join(secrets.choice(INVITE_ALPHABET) for _ in range(INVITE_LENGTH))
    invite = Invite(code=code, partner_id=partner.id, created_at=now,  # type: ignore[arg-type]
                    expires_at=now + timedelta(days=ttl_days))
    session.add(invite)
    session.flush()
    return invite
