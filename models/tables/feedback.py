"""Feedback surveys about a training or a contest, and their answers."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, UniqueConstraint
from sqlmodel import Field, SQLModel

FEEDBACK_SUBJECTS = ("training", "contest")


class FeedbackRequest(SQLModel, table=True):
    """A short survey sent to one partner about a training or a contest, and their answer."""

    __table_args__ = (UniqueConstraint("subject", "subject_id", "partner_id"),
                      Index("ix_feedbackrequest_open", "partner_id", "answered_at"))

    id: int = Field(default=None, primary_key=True)  # None until the row is flushed; every row read has one
    subject: str = Field(max_length=16)  # training | contest
    subject_id: int
    partner_id: int = Field(foreign_key="partner.id")
    created_at: datetime
    expires_at: datetime
    rating: int | None = None
    answered_at: datetime | None = None
    comment: str | None = Field(default=None, max_length=1000)
    commented_at: datetime | None = None
