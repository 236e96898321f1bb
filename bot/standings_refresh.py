"""After an import: rebuild the live standings it invalidated (shared by the CLI and the HTTP API)."""

from __future__ import annotations

from sqlalchemy import select
from sqlmodel import Session

from models import standings
from models.tables import Contest


def refresh_dirty(session: Session) -> int:
    """Rebuild every open contest marked dirty, so the next `/rank` is answered at once.

    Runs in the caller's transaction; returns how many contests were rebuilt.
    """
    ids = session.execute(select(Contest.id).where(Contest.closed_at.is_(None),
                                                   Contest.standings_dirty.is_(True))).scalars().all()
    for cid in ids:
        standings.refresh(session, cid)
    return len(ids)
