"""Feedback surveys (定期反馈): one request per partner and subject, a 1–5 rating, an optional comment.

A request is answered by the partner's next rating: a digit typed on WeChat answers their newest
open request, a Telegram button names its request. After the rating, the partner's next free
text within `COMMENT_WINDOW` is taken as the comment.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col

from models.db import rowcount, table_of
from models.tables import FEEDBACK_SUBJECTS, FeedbackRequest

RATINGS = range(1, 6)
REQUEST_TTL = timedelta(days=7)
COMMENT_WINDOW = timedelta(hours=1)
MAX_COMMENT = 1000


def request(session: Session, subject: str, subject_id: int, partner_ids: Iterable[int], now: datetime,
            ttl: timedelta = REQUEST_TTL) -> list[FeedbackRequest]:
    """Create the requests that do not exist yet; returns all requests of these partners for the subject."""
    if subject not in FEEDBACK_SUBJECTS:
        raise ValueError(subject)
    ids = sorted(set(partner_ids))
    if not ids:
        return []
    table = table_of(FeedbackRequest)
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert(table) if dialect == "postgresql" else sqlite.insert(table)
    session.execute(insert.on_conflict_do_nothing(index_elements=["subject", "subject_id", "partner_id"]),
                    [{"subject": subject, "subject_id": subject_id, "partner_id": pid, "created_at": now,
                      "expires_at": now + ttl} for pid in ids])
    stmt = (select(FeedbackRequest).where(col(FeedbackRequest.subject) == subject,
                                          col(FeedbackRequest.subject_id) == subject_id,
                                          col(FeedbackRequest.partner_id).in_(ids)).order_by(col(FeedbackRequest.partner_id)))
    return list(session.execute(stmt).scalars())


def request_by_id(session: Session, *, request_id: int) -> FeedbackRequest | None:
    """The feedback request a button names."""
    return session.get(FeedbackRequest, request_id)


def open_request(session: Session, partner_id: int, now: datetime) -> FeedbackRequest | None:
    """The partner's newest unanswered request that has not expired."""
    stmt = (select(FeedbackRequest).where(col(FeedbackRequest.partner_id) == partner_id,
                                          col(FeedbackRequest.answered_at).is_(None),
                                          col(FeedbackRequest.expires_at) > now)
            .order_by(col(FeedbackRequest.created_at).desc(), col(FeedbackRequest.id).desc()).limit(1))
    return session.execute(stmt).scalars().first()


def awaiting_comment(session: Session, partner_id: int, now: datetime) -> FeedbackRequest | None:
    """A request rated within the last `COMMENT_WINDOW` whose comment has not come yet."""
    stmt = (select(FeedbackRequest).where(col(FeedbackRequest.partner_id) == partner_id,
                                          col(FeedbackRequest.answered_at) > now - COMMENT_WINDOW,
                                          col(FeedbackRequest.commented_at).is_(None))
            .order_by(col(FeedbackRequest.answered_at).desc(), col(FeedbackRequest.id).desc()).limit(1))
    return session.execute(stmt).scalars().first()


def parse_rating(text: str) -> int | None:
    """`4`, `4分` to 4; anything else (including 0 and 6) to None."""
    text = text.strip().removesuffix("分").removesuffix("星").strip()
    if text.isascii() and text.isdigit() and int(text) in RATINGS:
        return int(text)
    return None


def rate(session: Session, request_id: int, partner_id: int, rating: int, now: datetime) -> str:
    """Store a rating once. Outcomes: rated, already, expired, not_found."""
    found = session.get(FeedbackRequest, request_id)
    if found is None or found.partner_id != partner_id:
        return "not_found"
    if found.answered_at is not None:
        return "already"
    if found.expires_at <= now:
        return "expired"
    done = session.execute(update(FeedbackRequest).where(col(FeedbackRequest.id) == request_id,
                                                         col(FeedbackRequest.answered_at).is_(None))
                           .values(rating=rating, answered_at=now))
    session.refresh(found)
    return "rated" if rowcount(done) == 1 else "already"


def comment(session: Session, found: FeedbackRequest, text: str, now: datetime) -> bool:
    """Store the comment once (cut to `MAX_COMMENT` characters)."""
    text = text.strip()[:MAX_COMMENT]
    done = session.execute(update(FeedbackRequest).where(col(FeedbackRequest.id) == found.id,
                                                         col(FeedbackRequest.commented_at).is_(None))
                           .values(comment=text, commented_at=now))
    session.refresh(found)
    return bool(rowcount(done) == 1)


@dataclass
class Summary:
    subject: str
    subject_id: int
    asked: int
    answered: int
    average: Decimal | None
    counts: dict[int, int]
    comments: list[dict[str, Any]]


def report(session: Session, subject: str | None = None, subject_id: int | None = None) -> list[Summary]:
    """Per training or contest: how many were asked and answered, the average, the spread, the comments."""
    stmt = select(FeedbackRequest).order_by(col(FeedbackRequest.subject), col(FeedbackRequest.subject_id),
                                            col(FeedbackRequest.answered_at), col(FeedbackRequest.id))
    if subject is not None:
        stmt = stmt.where(col(FeedbackRequest.subject) == subject)
    if subject_id is not None:
        stmt = stmt.where(col(FeedbackRequest.subject_id) == subject_id)
    groups: dict[tuple[str, int], list[FeedbackRequest]] = {}
    for row in session.execute(stmt).scalars():
        groups.setdefault((row.subject, row.subject_id), []).append(row)
    out = []
    for (subj, sid), rows in groups.items():
        rated = [r for r in rows if r.rating is not None]
        average = None
        if rated:
            average = (Decimal(sum(r.rating for r in rated)) / len(rated)).quantize(  # type: ignore[misc]
                Decimal("0.01"), rounding=ROUND_HALF_UP)
        out.append(Summary(subj, sid, len(rows), len(rated), average,
                           {n: sum(1 for r in rated if r.rating == n) for n in RATINGS},
                           [{"partner_id": r.partner_id, "rating": r.rating, "comment": r.comment,
                             "at": r.commented_at} for r in rows if r.comment]))
    return out


def subject_titles(session: Session, *, summaries: Iterable[Summary]) -> dict[tuple[str, int], str]:
    """What each summary is about, by (subject, id): a training's title or a contest's name ("" when gone)."""
    from models.contests import contest_by_id
    from models.trainings import training_by_id

    titles: dict[tuple[str, int], str] = {}
    for s in summaries:
        if s.subject == "training":
            training = training_by_id(session, training_id=s.subject_id)
            titles[(s.subject, s.subject_id)] = training.title if training else ""
        else:
            contest = contest_by_id(session, contest_id=s.subject_id)
            titles[(s.subject, s.subject_id)] = contest.name if contest else ""
    return titles
