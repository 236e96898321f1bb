"""Trainings (培训) and who signed up and checked in."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, UniqueConstraint
from sqlmodel import Field, SQLModel


class Training(SQLModel, table=True):
    """A training session (培训): a time, a place or link, an audience segment, attendance points."""

    id: int = Field(default=None, primary_key=True)  # None until the row is flushed; every row read has one
    title: str = Field(max_length=200)
    start_at: datetime = Field(index=True)
    duration_seconds: int
    place: str = Field(max_length=500)
    segment: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    points: int = 0
    checkin_code: str = Field(max_length=32)
    timezone: str = Field(default="Asia/Shanghai", max_length=64)
    created_at: datetime
    feedback_queued_at: datetime | None = None


class TrainingSignup(SQLModel, table=True):
    """Who joined a training, and whether (and when) they checked in."""

    __table_args__ = (UniqueConstraint("training_id", "partner_id"),)

    id: int = Field(default=None, primary_key=True)  # None until the row is flushed; every row read has one
    training_id: int = Field(foreign_key="training.id", index=True)
    partner_id: int = Field(foreign_key="partner.id", index=True)
    joined_at: datetime
    walk_in: bool = False  # checked in without having joined beforehand
    attended_at: datetime | None = None
    failed_checkins: int = 0
