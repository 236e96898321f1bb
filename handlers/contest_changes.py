"""Edits and cancellations of contests as the admins make them (the CLI and, later, the console):
the rule in `models.contest_changes`, then the participants told through the outbox, once per change."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlmodel import Session

from handlers import views
from handlers.notify import push
from models import contest_changes
from models.contest_changes import Change
from models.standings import participants
from models.tables import Contest


def participant_ids(session: Session, contest: Contest) -> set[int]:
    """Who takes part in the contest as its rules stand (a team contest needs a team)."""
    return {pid for pid, team_id, _joined in participants(session, contest)
            if contest.scope != "team" or team_id is not None}


def edit(session: Session, contest_id: int, changes: dict[str, Any], *, by: str, now: datetime) -> tuple[Change, int]:
    """Edit a contest (see `models.contest_changes` for what may change when) and, when a rule the
    participants were shown changed, tell them — those before the change and those after (a segment
    may have changed). Returns the change and the messages queued."""
    before = participant_ids(session, contest_changes.load(session, contest_id))
    change = contest_changes.edit(session, contest_id, changes, by=by, now=now)
    queued = 0
    if change.rules_changed:
        contest = change.contest
        info = views.contest_info(contest, now)
        changed = [name for name in change.record.changes if name not in contest_changes.NOT_SHOWN]
        queued = push(session, sorted(before | participant_ids(session, contest)),
                      key=lambda pid: f"contest_change:{change.record.id}:partner:{pid}", kind="announcement",
                      template="contest_changed", context={"contests": [info], "changed": changed}, now=now)
        change.record.announced = queued
        session.add(change.record)
    return change, queued


def cancel(session: Session, contest_id: int, *, by: str, now: datetime, announce: bool) -> tuple[Change, int]:
    """Cancel a contest; with `announce`, its participants hear that it is off (once)."""
    change = contest_changes.cancel(session, contest_id, by=by, now=now)
    queued = 0
    if announce:
        contest = change.contest
        queued = push(session, sorted(participant_ids(session, contest)),
                      key=lambda pid: f"contest_cancel:{contest.id}:partner:{pid}", kind="announcement",
                      template="say", context={"key": "contest.cancelled", "params": {"name": contest.name}},
                      now=now)
        change.record.announced = queued
        session.add(change.record)
    return change, queued
