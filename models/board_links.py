"""A contest's meeting-room board links (`BoardLink`): created and revoked by admins, opened by a TV.

The token is 32 bytes from `secrets` (43 URL-safe characters): unguessable, so the board needs no
sign-in; revoking a link ends it at the next request (and the open board's next poll).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlmodel import Session, col

from models.db import rowcount
from models.tables import BoardLink, Contest


@dataclass(frozen=True)
class BoardState:
    """What a board's poll reads every two seconds: one row, by the token's unique index."""

    contest_id: int
    revoked: bool
    standings_at: datetime | None
    standings_dirty: bool
    closed_at: datetime | None
    cancelled_at: datetime | None


def create(session: Session, *, contest_id: int, by: int | None, now: datetime) -> BoardLink:
    link = BoardLink(token=secrets.token_urlsafe(32), contest_id=contest_id, created_by=by, created_at=now)
    session.add(link)
    session.flush()
    return link


def of_contest(session: Session, *, contest_id: int) -> list[BoardLink]:
    """The contest's links that still work, newest first."""
    return list(session.execute(select(BoardLink).where(col(BoardLink.contest_id) == contest_id,
                                                        col(BoardLink.revoked_at).is_(None))
                                .order_by(col(BoardLink.id).desc())).scalars())


def revoke(session: Session, *, contest_id: int, link_id: int, now: datetime) -> bool:
    """End a link; False when there is no such live link of this contest."""
    done = session.execute(update(BoardLink).where(col(BoardLink.id) == link_id,
                                                   col(BoardLink.contest_id) == contest_id,
                                                   col(BoardLink.revoked_at).is_(None)).values(revoked_at=now))
    return rowcount(done) == 1


def state(session: Session, *, token: str) -> BoardState | None:
    """The link's contest and whether its standings moved (None: no such link)."""
    row = session.execute(select(col(BoardLink.contest_id), col(BoardLink.revoked_at), col(Contest.standings_at),
                                 col(Contest.standings_dirty), col(Contest.closed_at), col(Contest.cancelled_at))
                          .join(Contest, col(Contest.id) == BoardLink.contest_id)
                          .where(col(BoardLink.token) == token)).first()
    if row is None:
        return None
    contest_id, revoked_at, standings_at, dirty, closed_at, cancelled_at = row
    return BoardState(int(contest_id), revoked_at is not None, standings_at, bool(dirty), closed_at, cancelled_at)
