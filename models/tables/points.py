"""The points ledger."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Index
from sqlmodel import Field, SQLModel


class PointsEntry(SQLModel, table=True):
    """Append-only points ledger. The balance is the sum of `amount`; `source_key` is unique."""

    __table_args__ = (Index("ix_pointsentry_created", "created_at", "kind", "amount"),)  # a month's movements

    id: int = Field(default=None, primary_key=True)  # None until the row is flushed; every row read has one
    partner_id: int = Field(foreign_key="partner.id", index=True)
    kind: str = Field(max_length=16)  # earned, spent, refunded, adjusted, expired
    amount: int
    reason: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    source_key: str = Field(max_length=200, unique=True)
    created_at: datetime
