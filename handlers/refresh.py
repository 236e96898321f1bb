"""Stale standings rebuilt, and whoever just fell off a public board told (the overtaken nudge).

One mechanism for its three callers: the CLI and the HTTP API after an import (in the import's
own transaction, `refresh_dirty`) and the scheduler (a transaction per contest, `refresh_contest`).
A contest is *running*, and so sends overtaken nudges, while `models.contests.status` says
`active`: not closed, and now within [start_at, end_at).
"""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session

from handlers.nudges import queue_overtaken
from models import contests, standings
from models.tallies import Sums
from models.values import utcnow


def refresh_contest(session: Session, contest_id: int, now: datetime, sums: dict[int, Sums] | None = None) -> int:
    """Rebuild one contest's live standings (with `sums`: its period's sums, kept by the sales
    import of this transaction); nudge those it pushed off the board if it is running.

    Returns how many nudges were queued.
    """
    dropped = standings.refresh_tracking(session, contest_id, sums)
    contest = contests.contest_by_id(session, contest_id=contest_id)
    if dropped and contest is not None and contests.status(contest, now) == "active":
        return queue_overtaken(session, contest, dropped, now)
    return 0


def refresh_dirty(session: Session, now: datetime | None = None, kept: dict[int, dict[int, Sums]] | None = None) -> int:
    """Rebuild every open contest marked dirty, so the next `/rank` is answered at once.

    `kept`: the sums a sales import of this transaction kept (`models.tallies`), by contest id;
    a contest among them is rebuilt without reading its period's sales, the others in full.
    Runs in the caller's transaction; returns how many contests were rebuilt.
    """
    now = now or utcnow()
    kept = kept or {}
    ids = standings.stale_contest_ids(session)
    for contest_id in ids:
        refresh_contest(session, contest_id, now, kept.get(contest_id))
    return len(ids)
