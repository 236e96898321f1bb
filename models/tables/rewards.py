"""The rewards store: its catalog and the redemptions of points for items."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, Index
from sqlmodel import Field, SQLModel

from models.kinds import RedemptionStatus

REDEMPTION_STATUSES = tuple(RedemptionStatus)


class RewardItem(SQLModel, table=True):
    """One article of the catalog. `stock` is changed only by conditional UPDATEs (never below zero)."""

    __table_args__ = (CheckConstraint("stock >= 0", name="ck_rewarditem_stock"),
                      CheckConstraint("points > 0", name="ck_rewarditem_points"))

    id: int = Field(default=None, primary_key=True)  # None until the row is flushed; every row read has one
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

    id: int = Field(default=None, primary_key=True)  # None until the row is flushed; every row read has one
    partner_id: int = Field(foreign_key="partner.id", index=True)
    item_id: int = Field(foreign_key="rewarditem.id", index=True)
    points: int
    status: str = Field(default=RedemptionStatus.PENDING, max_length=16)
    created_at: datetime
    decided_at: datetime | None = None
    decided_by: int | None = Field(default=None, foreign_key="partner.id")
    note: str | None = Field(default=None, max_length=500)  # the reason given with a rejection
