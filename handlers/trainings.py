"""Chat commands for trainings (`/training`, `/training join N` = `报名 N`, `/checkin CODE` = `签到 CODE`)
and the reminder job the scheduler runs.
"""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session

from handlers.identity import Asker
from handlers.notify import push, say
from handlers.parse import command_name, id_arg, is_number
from handlers.registry import command
from handlers.types import ChatConfig, Reply
from models import points
from models import trainings as ops
from models.tables import Training


@command("training")
def cmd_training(session: Session, asker: Asker, args: list[str], config: ChatConfig, now: datetime) -> list[Reply]:
    """The partner's upcoming trainings; `join N` and `checkin CODE` (or `报名 N`, `签到 CODE`) as sub-commands."""
    sub = command_name(args[0]) if args else None
    if sub == "join":
        return cmd_join(session, asker, args[1:], config, now)
    if sub == "checkin":
        return cmd_checkin(session, asker, args[1:], config, now)
    partner = asker.partner
    assert partner is not None
    shown = ops.upcoming(session, partner, now)
    mine = ops.signups_of(session, partner_id=partner.id, training_ids=[t.id for t in shown])
    rows = []
    for t in shown:
        signup = mine.get(t.id)
        rows.append({"id": t.id, "title": t.title, "start": t.start_at, "end": ops.end_at(t), "place": t.place,
                     "points": t.points, "tz": t.timezone, "running": t.start_at <= now,
                     "joined": signup is not None and not signup.walk_in,
                     "attended": signup is not None and signup.attended_at is not None})
    return [Reply("trainings", {"trainings": rows, "role": asker.role}, asker.locale)]


@command("join", glued=True)
def cmd_join(session: Session, asker: Asker, args: list[str], config: ChatConfig, now: datetime) -> list[Reply]:
    partner = asker.partner
    assert partner is not None
    ref = args[0].lstrip("#＃") if args else ""
    if not is_number(ref):
        return [say(asker, "training.join_usage")]
    ident = id_arg(ref)
    outcome, training = ops.join(session, ident, partner, now) if ident is not None else ("not_found", None)
    if training is None:
        return [say(asker, f"training.{outcome}", id=ref)]
    return [say(asker, f"training.{outcome}", id=training.id, title=training.title, at=training.start_at,
                place=training.place, tz=training.timezone)]


@command("checkin", glued=True)
def cmd_checkin(session: Session, asker: Asker, args: list[str], config: ChatConfig, now: datetime) -> list[Reply]:
    partner = asker.partner
    assert partner is not None
    if not args:
        return [say(asker, "training.checkin_usage")]
    done = ops.check_in(session, partner, args[0], now)
    t = done.training
    params: dict[str, object] = {"points": done.points, "tries": done.tries_left}
    if t is not None:
        params.update(title=t.title, at=t.start_at, until=ops.checkin_closes(t), tz=t.timezone)
    if done.outcome == "ok":
        params["balance"] = points.balance(session, partner.id)
    return [say(asker, f"training.checkin_{done.outcome}", **params)]


def queue_reminders(session: Session, now: datetime) -> int:
    """Scheduler job: queue the 24-hour and 1-hour reminders due by `now`. Idempotent; returns rows queued.

    Run it every few minutes: each reminder goes out in the first run after its moment (24 h or
    1 h before the start), once, under the outbox key `training:{id}:{remind24|remind1}:partner:{pid}`.
    """
    total = 0
    for due in ops.reminders_due(session, now):
        t: Training = due.training
        context = {"which": due.which, "title": t.title, "start": t.start_at, "place": t.place, "tz": t.timezone,
                   "points": t.points}
        prefix = f"training:{t.id}:{due.which}:partner:"

        def key(pid: int, prefix: str = prefix) -> str:
            return f"{prefix}{pid}"

        total += push(session, due.partner_ids, key=key, kind="reminder",
                      template="training_reminder", context=context, now=now)
    return total
