"""The scheduled jobs. Each takes the time it runs for and is idempotent: a second run for the
same moment changes nothing, so restarts, catch-ups and a second scheduler are harmless."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Engine

from handlers.announcements import ImageConfig, announce_close, announce_opening, tell_admins_missing_targets
from handlers.feedback import queue_contest_feedback, queue_feedback_requests
from handlers.nudges import queue_final_hours, queue_weekly
from handlers.points import expire_due, queue_expiry_reminders
from handlers.refresh import refresh_contest
from handlers.trainings import queue_reminders
from models import contests, standings
from models.db import session_scope

log = logging.getLogger("mianzi.scheduler")


@dataclass
class Closed:
    contest_id: int
    queued: int
    next_contest_id: int | None
    outcome: contests.Closed  # what the close froze (results, points) and the next period it created
    missing_targets: list[str] = field(default_factory=list)  # codes without a target in the next period


def close_due(engine: Engine, now: datetime, group_locale: str = "zh",
              images: ImageConfig | None = None) -> list[Closed]:
    """Close every contest whose period plus grace has ended, and queue its announcements.

    The one close-and-announce of the program: the scheduler's tick and `mianzi contests
    close-due` both run it. Close and announcement share one transaction: a crash leaves either
    both or neither, and a contest closed once is never announced twice (`close` returns None
    the second time). A recurring contest that missed several periods (the server was down)
    is caught up in one run: each period closed creates the next, and that one is closed too
    if it is due as well, until nothing due is left. A period that has already ended when it is
    created gets no "a new period has started" message, only its results.
    """
    done: list[Closed] = []
    tried: set[int] = set()
    while True:
        with session_scope(engine) as session:
            due = [cid for cid in contests.due(session, now) if cid not in tried]
        if not due:
            return done
        for cid in due:
            tried.add(cid)
            closed = close_contest(engine, cid, now, group_locale, images)
            if closed is not None:
                done.append(closed)


def close_contest(engine: Engine, contest_id: int, now: datetime, group_locale: str = "zh",
                  images: ImageConfig | None = None) -> Closed | None:
    """Close one contest and queue its announcements in one transaction (`close_due`'s step, and
    the console's "close now"): the results frozen and paid, the winners' post and each
    participant's result queued, the surveys, a recurring contest's next period opened. None when
    it was closed (or cancelled) already: a second close announces nothing."""
    with session_scope(engine) as session:
        closed = contests.close(session, contest_id, now)
        if closed is None:
            return None
        queued = announce_close(session, contest_id, now, group_locale, images)
        queued += queue_contest_feedback(session, contest_id, now)
        nxt = closed.next_contest
        missing: list[str] = []
        if nxt is not None and contests.status(nxt, now) in ("upcoming", "active"):
            queued += announce_opening(session, nxt.id, now)
        if nxt is not None:  # the admins hear who has no target in the new period (attainment)
            missing = standings.lacking_targets(session, nxt)
            queued += tell_admins_missing_targets(session, nxt, missing, now)
        log.info("closed contest %s, queued %s messages, next period %s", contest_id, queued,
                 nxt.id if nxt else None)
        return Closed(contest_id, queued, nxt.id if nxt else None, closed, missing)


def refresh_and_nudge(engine: Engine, now: datetime) -> int:
    """Rebuild stale standings (telling those who fell off a board) and send final-48-hours reminders."""
    queued = 0
    with session_scope(engine) as session:
        ids = standings.stale_contest_ids(session)
    for cid in ids:
        with session_scope(engine) as session:
            queued += refresh_contest(session, cid, now)
    with session_scope(engine) as session:
        queued += queue_final_hours(session, now)
    return queued


def incentives(engine: Engine, now: datetime) -> int:
    """Training reminders (24 h and 1 h before) and surveys after trainings end."""
    with session_scope(engine) as session:
        return queue_reminders(session, now) + queue_feedback_requests(session, now)


def daily(engine: Engine, now: datetime, expiry_months: int, timezone: str) -> int:
    """Points expiry (oldest first) and the reminder a month before; nothing when points never expire."""
    if expiry_months <= 0:
        return 0
    with session_scope(engine) as session:
        expired = expire_due(session, now, expiry_months)
        reminded = queue_expiry_reminders(session, now, expiry_months, timezone)
    if expired:
        log.info("expired points of %s partners", len(expired))
    return reminded


def weekly_standings(engine: Engine, now: datetime) -> int:
    with session_scope(engine) as session:
        return queue_weekly(session, now)


def tick(engine: Engine, now: datetime, group_locale: str = "zh",
         images: ImageConfig | None = None) -> dict[str, int]:
    """Everything that is due by `now` (the scheduler runs it every few seconds, and at start-up)."""
    closed = close_due(engine, now, group_locale, images)
    nudged = refresh_and_nudge(engine, now) + incentives(engine, now)
    return {"closed": len(closed), "queued": sum(c.queued for c in closed) + nudged}
