"""Trainings (培训): creation, who may see and join them, reminders due, check-in and attendance points.

Check-in is open from the start of a session until `CHECKIN_WINDOW` after it starts (latecomers
included, no-shows who only read the code later are not). The code is the proof of presence, so a
partner gets `MAX_FAILED_CHECKINS` wrong tries per session before check-in is locked for them.
Attendance points are awarded once: the conditional UPDATE on `attended_at IS NULL` decides who
checked in first, and the ledger's unique source key guards it a second time.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlmodel import Session, col

from models import points
from models.db import rowcount
from models.errors import DataError
from models.kinds import Role
from models.segments import matches
from models.tables import Partner, Training, TrainingSignup
from models.values import as_utc, zone

CHECKIN_WINDOW = timedelta(minutes=30)
MAX_FAILED_CHECKINS = 5
REMINDERS = {"remind24": timedelta(hours=24), "remind1": timedelta(hours=1)}
MAX_DURATION = timedelta(days=7)
MAX_POINTS = 1_000_000
_CODE = re.compile(r"^[A-Za-z0-9]{3,32}$")
CODE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"


@dataclass
class TrainingSpec:
    title: str
    start_at: datetime
    duration_seconds: int
    place: str
    segment: dict[str, Any] | None = None
    points: int = 0
    code: str | None = None  # a fresh random code when not given
    timezone: str = "Asia/Shanghai"


def training_by_id(session: Session, *, training_id: int) -> Training | None:
    """The training as an ORM object (from the session's identity map if loaded)."""
    return session.get(Training, training_id)


def create(session: Session, spec: TrainingSpec, now: datetime) -> Training:
    title, place = spec.title.strip(), spec.place.strip()
    if not title or len(title) > 200:
        raise DataError("training.bad_title")
    if not place or len(place) > 500:
        raise DataError("training.bad_place")
    if not 0 < spec.duration_seconds <= MAX_DURATION.total_seconds():
        raise DataError("training.bad_duration")
    if not 0 <= spec.points <= MAX_POINTS:
        raise DataError("training.bad_points", max=MAX_POINTS)
    code = (spec.code or "".join(secrets.choice(CODE_ALPHABET) for _ in range(6))).strip()
    if not _CODE.match(code):
        raise DataError("training.bad_code", value=code[:40])
    zone(spec.timezone)
    training = Training(title=title, start_at=as_utc(spec.start_at), duration_seconds=spec.duration_seconds,
                        place=place, segment=spec.segment or {}, points=spec.points, checkin_code=code.upper(),
                        timezone=spec.timezone, created_at=now)
    session.add(training)
    session.flush()
    return training


def end_at(training: Training) -> datetime:
    return as_utc(training.start_at) + timedelta(seconds=training.duration_seconds)


def checkin_closes(training: Training) -> datetime:
    return as_utc(training.start_at) + CHECKIN_WINDOW


def in_segment(session: Session, segment: dict[str, Any], partner: Partner) -> bool:
    """Whether a partner belongs to a training's audience."""
    return matches(session, segment, partner)


def visible(session: Session, training: Training, partner: Partner) -> bool:
    return partner.role == Role.ADMIN or in_segment(session, training.segment or {}, partner)


def upcoming(session: Session, partner: Partner, now: datetime, limit: int = 10) -> list[Training]:
    """Trainings not yet over that the partner may attend (all of them for an admin), soonest first."""
    rows = session.execute(select(Training).where(col(Training.start_at) >= now - MAX_DURATION)
                           .order_by(col(Training.start_at), col(Training.id))).scalars().all()
    return [t for t in rows if end_at(t) > now and visible(session, t, partner)][:limit]


def signup_of(session: Session, training_id: int, partner_id: int) -> TrainingSignup | None:
    return session.execute(select(TrainingSignup).where(col(TrainingSignup.training_id) == training_id,
                                                        col(TrainingSignup.partner_id) == partner_id)).scalars().first()


def join(session: Session, training_id: int, partner: Partner, now: datetime) -> tuple[str, Training | None]:
    """Sign a partner up. Outcomes: joined, already, not_found, closed (check-in is over), not_for_you."""
    training = session.get(Training, training_id)
    if training is None:
        return "not_found", None
    if not visible(session, training, partner):
        return "not_for_you", training
    if now > checkin_closes(training):
        return "closed", training
    found = signup_of(session, training_id, partner.id)
    if found is not None and not found.walk_in:
        return "already", training
    if found is None:
        session.add(TrainingSignup(training_id=training_id, partner_id=partner.id,
                                   joined_at=now))
    else:
        found.walk_in, found.joined_at = False, now
    session.flush()
    return "joined", training


@dataclass(frozen=True)
class CheckIn:
    outcome: str  # ok, already, wrong_code, wrong_code_done, too_early, too_late, none_open, locked
    training: Training | None = None
    points: int = 0
    tries_left: int = 0


def check_in(session: Session, partner: Partner, code: str, now: datetime) -> CheckIn:
    """Record attendance with the session's code and award its points once.

    The code names the session: any of the partner's trainings with that code is the one meant
    (an open one first, else the nearest in time), so a code of tomorrow's session says "too
    early" and costs nothing. Only a code of none of the partner's trainings is a wrong try,
    counted against the sessions open now that they have not yet checked in to.
    """
    code = code.strip().upper()
    matching = [t for t in _with_code(session, code) if visible(session, t, partner)]
    if matching:
        training = min(matching, key=lambda t: (not _open(t, now), abs((as_utc(t.start_at) - now).total_seconds())))
        signup = signup_of(session, training.id, partner.id)
        if signup is not None and signup.attended_at is not None:
            return CheckIn("already", training)
        if now < as_utc(training.start_at):
            return CheckIn("too_early", training)
        if now > checkin_closes(training):
            return CheckIn("too_late", training)
        if signup is not None and signup.failed_checkins >= MAX_FAILED_CHECKINS:
            return CheckIn("locked", training)
        signup = signup or _walk_in(session, training, partner, now)
        marked = session.execute(update(TrainingSignup).where(col(TrainingSignup.id) == signup.id,
                                                              col(TrainingSignup.attended_at).is_(None))
                                 .values(attended_at=now))
        if rowcount(marked) != 1:
            return CheckIn("already", training)
        session.refresh(signup)
        if training.points > 0:
            points.credit(session, partner.id, training.points, "earned",
                          {"code": "points.attendance", "training_id": training.id},
                          f"training:{training.id}:attendance:partner:{partner.id}", now)
        return CheckIn("ok", training, training.points)
    open_now = [t for t in _recent(session, now) if _open(t, now) and visible(session, t, partner)]
    if not open_now:
        return CheckIn("none_open")
    pending = []
    for training in open_now:
        signup = signup_of(session, training.id, partner.id)
        if signup is None or signup.attended_at is None:
            pending.append((training, signup))
    if not pending:  # checked in to every open session already: a typo now locks nothing
        return CheckIn("wrong_code_done", open_now[0])
    left = 0
    for training, signup in pending:
        signup = signup or _walk_in(session, training, partner, now)
        signup.failed_checkins += 1
        session.add(signup)
        left = max(left, MAX_FAILED_CHECKINS - signup.failed_checkins)
    session.flush()
    return CheckIn("wrong_code" if left > 0 else "locked", pending[0][0], tries_left=left)


def _open(training: Training, now: datetime) -> bool:
    return as_utc(training.start_at) <= now <= checkin_closes(training)


def _with_code(session: Session, code: str) -> list[Training]:
    """Every training with this check-in code (codes are stored upper-case)."""
    return list(session.execute(select(Training).where(col(Training.checkin_code) == code)
                                .order_by(col(Training.start_at), col(Training.id))).scalars())


def _recent(session: Session, now: datetime) -> list[Training]:
    """Sessions whose start is within a day of now: the only ones that can be open for check-in."""
    return list(session.execute(select(Training).where(col(Training.start_at) >= now - timedelta(days=1),
                                                       col(Training.start_at) <= now + timedelta(days=1))
                                .order_by(col(Training.start_at), col(Training.id))).scalars())


def _walk_in(session: Session, training: Training, partner: Partner, now: datetime) -> TrainingSignup:
    signup = TrainingSignup(training_id=training.id, partner_id=partner.id, joined_at=now,
                            walk_in=True)
    session.add(signup)
    session.flush()
    return signup


@dataclass(frozen=True)
class Due:
    training: Training
    which: str  # remind24 | remind1
    partner_ids: list[int]


def reminders_due(session: Session, now: datetime) -> list[Due]:
    """Who should be reminded now, and of which session.

    `remind24` is due once a session is 24 hours away or nearer but more than an hour away;
    `remind1` once it is an hour away or nearer and not started. Only partners who had joined
    before the reminder's moment get it (someone who joins 3 hours before needs no "tomorrow"
    message), and a scheduler that was down past the 24-hour mark still sends the right one.
    """
    trainings = session.execute(select(Training).where(col(Training.start_at) > now,
                                                       col(Training.start_at) <= now + REMINDERS["remind24"])
                                .order_by(col(Training.start_at), col(Training.id))).scalars().all()
    due = []
    for training in trainings:
        start = as_utc(training.start_at)
        which = "remind1" if start - now <= REMINDERS["remind1"] else "remind24"
        moment = start - REMINDERS[which]
        stmt = (select(col(TrainingSignup.partner_id)).where(col(TrainingSignup.training_id) == training.id,
                                                        col(TrainingSignup.walk_in).is_(False),
                                                        col(TrainingSignup.joined_at) <= moment)
                .order_by(col(TrainingSignup.partner_id)))
        ids = [int(pid) for pid in session.execute(stmt).scalars()]
        if ids:
            due.append(Due(training, which, ids))
    return due


def attendance(session: Session, training_id: int) -> list[tuple[TrainingSignup, Partner]]:
    stmt = (select(TrainingSignup, Partner).join(Partner, col(Partner.id) == TrainingSignup.partner_id)
            .where(col(TrainingSignup.training_id) == training_id).order_by(col(Partner.code)))
    return [(s, p) for s, p in session.execute(stmt).all()]


def ended_unsurveyed(session: Session, now: datetime, lookback: timedelta) -> list[Training]:
    """Sessions over (and check-in closed) by `now`, within `lookback`, not yet asked for feedback."""
    rows = session.execute(select(Training).where(col(Training.feedback_queued_at).is_(None),
                                                  col(Training.start_at) <= now,
                                                  col(Training.start_at) >= now - lookback - MAX_DURATION)
                           .order_by(col(Training.start_at), col(Training.id))).scalars().all()
    return [t for t in rows if max(end_at(t), checkin_closes(t)) <= now and end_at(t) >= now - lookback]


def claim_feedback(session: Session, training_id: int, now: datetime) -> bool:
    """Mark a session's survey as sent; False when another run already did (idempotent jobs)."""
    done = session.execute(update(Training).where(col(Training.id) == training_id,
                                                  col(Training.feedback_queued_at).is_(None))
                           .values(feedback_queued_at=now))
    return bool(rowcount(done) == 1)


def attendees(session: Session, training_id: int) -> list[int]:
    stmt = (select(col(TrainingSignup.partner_id)).where(col(TrainingSignup.training_id) == training_id,
                                                    col(TrainingSignup.attended_at).is_not(None))
            .order_by(col(TrainingSignup.partner_id)))
    return [int(pid) for pid in session.execute(stmt).scalars()]


def signups_of(session: Session, *, partner_id: int, training_ids: list[int]) -> dict[int, TrainingSignup]:
    """The partner's signups to these trainings, by training id."""
    return {s.training_id: s for s in session.execute(select(TrainingSignup).where(
        col(TrainingSignup.partner_id) == partner_id, col(TrainingSignup.training_id).in_(training_ids))).scalars()}


def all_trainings(*, session: Session) -> list[Training]:
    """Every training, by start then id (`mianzi trainings list`)."""
    return list(session.execute(select(Training).order_by(col(Training.start_at), col(Training.id))).scalars())


def signup_counts(*, session: Session) -> dict[int, tuple[int, int]]:
    """Per training: how many joined before it (walk-ins not counted) and how many attended."""
    rows = session.execute(select(col(TrainingSignup.training_id),
                                  func.count().filter(col(TrainingSignup.walk_in).is_(False)),
                                  func.count(col(TrainingSignup.attended_at))).group_by(col(TrainingSignup.training_id)))
    return {tid: (int(joined), int(came)) for tid, joined, came in rows}
