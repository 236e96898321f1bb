"""After an import: rebuild the live standings it invalidated (shared by the CLI, the HTTP API and
the scheduler), and tell anyone who just fell off a public board."""

from __future__ import annotations

from sqlalchemy import select
from sqlmodel import Session

from handlers.nudges import queue_overtaken
from models import standings
from models.tables import Contest
from models.values import utcnow


def refresh_dirty(session: Session) -> int:
    """Rebuild every open contest marked dirty, so the next `/rank` is answered at once.

    Runs in the caller's transaction; returns how many contests were rebuilt.
    """
    ids = session.execute(select(Contest.id).where(Contest.closed_at.is_(None), Contest.cancelled_at.is_(None),
                                                   Contest.standings_dirty.is_(True))).scalars().all()
    now = utcnow()
    for cid in ids:
        dropped = standings.refresh_tracking(session, cid)
        contest = session.get(Contest, cid)
        if dropped and contest is not None and contest.start_at <= now < contest.end_at:
            queue_overtaken(session, contest, dropped, now)
    return len(ids)
