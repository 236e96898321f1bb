"""Broadcasts: an admin's announcement to everyone or a segment."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON
from sqlmodel import Field, SQLModel

from models.kinds import BroadcastStatus


class Broadcast(SQLModel, table=True):
    """An announcement from an admin to everyone or a segment; queued into the outbox on confirm."""

    id: int = Field(default=None, primary_key=True)  # None until the row is flushed; every row read has one
    text: str = Field(max_length=4000)
    segment: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    created_by: int | None = Field(default=None, foreign_key="partner.id")
    created_at: datetime
    send_at: datetime
    status: str = Field(default=BroadcastStatus.DRAFT, max_length=16)  # draft, queued, cancelled
    recipients: int = 0
    confirmed_at: datetime | None = None
