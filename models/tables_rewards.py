"""Tables for spending points (rewards store), trainings and feedback surveys (issue 7).

Same conventions as `models.tables`: aware UTC datetimes, integer points, append-only ledgers.
Points themselves live in `models.tables.PointsEntry`; these tables only say why entries exist.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, CheckConstraint, Index, UniqueConstraint
from sqlmodel import Field, SQLModel

REDEMPTION_STATUSES = ("pending", "approved", "rejected")
FEEDBACK_SUBJECTS = ("training", "contest")


class RewardItem(SQLModel, table=True):
    """One article of the catalog. `stock` is changed only by conditional UPDATEs (never below zero)."""

    __table_args__ = (CheckConstraint("stock >= 0", name="ck_rewarditem_stock"),
                      CheckConstraint("points > 0", name="ck_rewarditem_points"))

    id: int | None = Field(default=None, primary_key=True)
    sku: str = Field(max_length=64, unique=True)
    name_zh: str = Field(max_length=200)
    name_en: str = Field(max_length=200)
    points: int
    stock: int
    active: bool = True
    updated_at: datetime


class Redemption(SQLModel, table=True):
    """A request to exchange points for an item: pending until an admin approves or rejects it.

    The points are reserved by a `spent` ledger entry when the request is made and given back by a
    `refunded` entry on rejection; the unit of stock is taken and returned the same way.
    """

    __table_args__ = (Index("ix_redemption_status", "status", "created_at"),)

    id: int | None = Field(default=None, primary_key=True)
    partner_id: int = Field(foreign_key="partner.id", index=True)
    item_id: int = Field(foreign_key="rewarditem.id", index=True)
    points: int
    status: str = Field(default="pending", max_length=16)
    created_at: datetime
    decided_at: datetime | None = None
    decided_by: int | None = Field(default=None, foreign_key="partner.id")
    note: str | None = Field(default=None, max_length=500)  # the reason given with a rejection


class Training(SQLModel, table=True):
    """A training session (培训): a time, a place or link, an audience segment, attendance points."""

    id: int | None = Field(default=None, primary_key=True)
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

    id: int | None = Field(default=None, primary_key=True)
    training_id: int = Field(foreign_key="training.id", index=True)
    partner_id: int = Field(foreign_key="partner.id", index=True)
    joined_at: datetime
    walk_in: bool = False  # checked in without having joined beforehand
    attended_at: datetime | None = None
    failed_checkins: int = 0


class FeedbackRequest(SQLModel, table=True):
    """A short survey sent to one partner about a training or a contest, and their answer."""

    __table_args__ = (UniqueConstraint("subject", "subject_id", "partner_id"),
                      Index("ix_feedbackrequest_open", "partner_id", "answered_at"))

    id: int | None = Field(default=None, primary_key=True)
    subject: str = Field(max_length=16)  # training | contest
    subject_id: int
    partner_id: int = Field(foreign_key="partner.id")
    created_at: datetime
    expires_at: datetime
    rating: int | None = None
    answered_at: datetime | None = None
    comment: str | None = Field(default=None, max_length=1000)
    commented_at: datetime | None = None
