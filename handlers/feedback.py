"""Feedback surveys in chat: the request (buttons on Telegram, a digit on WeChat), the rating, the comment;
and the jobs the scheduler runs after a training ends and after a contest closes.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from sqlmodel import Session

from handlers.identity import Asker
from handlers.notify import push, say
from handlers.parse import id_arg
from handlers.registry import command
from handlers.types import Button, ChatConfig, Reply
from messages.render import t
from models import contests, results, trainings
from models import feedback as ops
from models.recipients import Recipient

LOOKBACK = timedelta(days=2)  # a training that ended longer ago than this is not surveyed any more


@command("feedback", needs_partner=False)
def cmd_feedback(session: Session, asker: Asker, args: list[str], config: ChatConfig, now: datetime) -> list[Reply]:
    """A rating: `4` (typed: answers the newest open request) or `fb:<request>:<rating>` (a button)."""
    partner = asker.partner
    if asker.incoming.is_group:
        return []  # a digit in a busy group is not for us
    if partner is None:
        return [say(asker, "chat.need_bind")]
    if len(args) >= 2:  # a button names its request
        ref, value = args[0], args[1]
        ident = id_arg(ref)
        found = ops.request_by_id(session, request_id=ident) if ident is not None else None
        if found is None or found.partner_id != partner.id:
            return [say(asker, "feedback.nothing_open")]
    else:
        value = args[0] if args else ""
        found = ops.open_request(session, partner.id, now)
        if found is None:  # just a number, and no survey waiting for one
            return [say(asker, "chat.unknown")]
    rating = ops.parse_rating(value)
    if rating is None:
        return [say(asker, "feedback.out_of_range")]
    outcome = ops.rate(session, found.id, partner.id, rating, now)
    return [say(asker, f"feedback.{outcome}", rating=rating)]


def comment_reply(session: Session, asker: Asker, text: str, now: datetime) -> list[Reply]:
    """Free text right after a rating is its comment; returns no replies when it is not one."""
    if asker.member is None or asker.incoming.is_group:
        return []
    found = ops.awaiting_comment(session, asker.member.id, now)
    if found is None or not ops.comment(session, found, text, now):
        return []
    return [say(asker, "feedback.commented")]


def _buttons(request_ids: dict[int, int]) -> Callable[[Recipient], list[Button]]:
    """Telegram shows these under the request; WeChat shows the text, which asks for a digit."""

    def buttons(r: Recipient) -> list[Button]:
        rid = request_ids[r.partner_id]
        return [Button(t("feedback.button", r.locale, rating=n), f"fb:{rid}:{n}") for n in ops.RATINGS]

    return buttons


def _ask(session: Session, subject: str, subject_id: int, title: str, partner_ids: list[int], now: datetime) -> int:
    requests = [r for r in ops.request(session, subject, subject_id, partner_ids, now) if r.answered_at is None]
    ids = {r.partner_id: r.id for r in requests}
    return push(session, list(ids), key=lambda pid: f"feedback:{subject}:{subject_id}:partner:{pid}",
                kind="feedback", template="feedback_request",
                context={"subject": subject, "title": title}, now=now, buttons=_buttons(ids))


def queue_feedback_requests(session: Session, now: datetime) -> int:
    """Scheduler job: survey the attendees of every training that ended (once each). Returns rows queued.

    Run it every few minutes; a training is surveyed in the first run after it ends (and after its
    check-in closed), unless that is more than `LOOKBACK` later.
    """
    total = 0
    for training in trainings.ended_unsurveyed(session, now, LOOKBACK):
        if not trainings.claim_feedback(session, training.id, now):
            continue
        total += _ask(session, "training", training.id, training.title,
                      trainings.attendees(session, training.id), now)
    return total


def queue_contest_feedback(session: Session, contest_id: int, now: datetime) -> int:
    """Scheduler job, after a contest closed: survey everyone who took part. Idempotent; returns rows queued."""
    contest = contests.contest_by_id(session, contest_id=contest_id)
    if contest is None or contest.closed_at is None:
        return 0
    ids = results.participant_ids(session, contest_id=contest_id)
    return _ask(session, "contest", contest_id, contest.name, ids, now)
