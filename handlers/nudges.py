"""Mid-period pushes: weekly standings, the final 48 hours, and "you've been overtaken"."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from sqlmodel import Session

from handlers import views
from messages.render import render
from models import contests as contest_ops
from models import outbox, partners, standings
from models.recipients import recipients
from models.rows import AnyContest
from models.tables import Contest
from models.values import as_utc, zone

FINAL_HOURS = 48


def _personal_rows(session: Session, contest: AnyContest, template: str, key: str, now: datetime,
                   only: Iterable[int] | None = None) -> list[dict[str, Any]]:
    """One message per participant with a chat account, each with their own standing."""
    contest = views.fresh(session, contest)
    if isinstance(contest, Contest):  # an ORM contest from the caller: as the database has it now
        session.refresh(contest)
    lines = {line.partner_id: line for line in standings.all_lines(session, contest)
             if line.kind in ("partner", "member") and line.partner_id is not None}
    wanted = set(lines) if only is None else set(only) & set(lines)
    rows = []
    for person in recipients(session, partner_ids=sorted(wanted)):
        partner = partners.partner_by_id(session, partner_id=person.partner_id)
        view = views.rank_view(session, contest, partner, now)
        rows.append(outbox.personal(person, key=key.format(partner=person.partner_id), kind="nudge",
                                    payload={"text": render(template, person.locale, **view)}))
    return rows


def queue_weekly(session: Session, now: datetime) -> int:
    """Each running contest's participants get their rank and gap (once per contest and week)."""
    queued = 0
    for contest in _running(session, now):
        year, week, _ = as_utc(now).astimezone(zone(contest.timezone)).isocalendar()
        key = f"weekly:{contest.id}:{year}-W{week:02d}:partner:{{partner}}"
        queued += outbox.queue(session, _personal_rows(session, contest, "weekly", key, now), now)
    return queued


def queue_final_hours(session: Session, now: datetime) -> int:
    """The last 48 hours of a period: one reminder per participant (once per contest)."""
    queued = 0
    for contest in _running(session, now):
        if as_utc(contest.end_at) - timedelta(hours=FINAL_HOURS) > now:
            continue
        key = f"final48:{contest.id}:partner:{{partner}}"
        queued += outbox.queue(session, _personal_rows(session, contest, "final_hours", key, now), now)
    return queued


def _running(session: Session, now: datetime) -> list[AnyContest]:
    """The contests whose period is under way now (`models.contests.status`: active)."""
    return [c for c in views.open_contests(session, now) if contest_ops.status(c, now) == "active"]


def queue_overtaken(session: Session, contest: Contest, dropped: Iterable[int], now: datetime) -> int:
    """Partners who just fell out of the public top N hear it privately, at most once a day."""
    dropped = list(dropped)
    if not dropped:
        return 0
    day = as_utc(now).astimezone(zone(contest.timezone)).date().isoformat()
    key = f"overtaken:{contest.id}:{day}:partner:{{partner}}"
    return outbox.queue(session, _personal_rows(session, contest, "overtaken", key, now, only=dropped), now)
