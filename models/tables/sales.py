"""The sales ledger and the partners' targets."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import BigInteger, Index, UniqueConstraint
from sqlmodel import Field, SQLModel


class Sale(SQLModel, table=True):
    """Append-only ledger of sales facts; `ext_id` is the source system's id."""

    __table_args__ = (
        Index("ix_sale_occurred_partner", "occurred_at", "partner_id"),
        Index("ix_sale_partner_customer", "partner_id", "customer", "occurred_at"),
    )

    id: int = Field(default=None, primary_key=True)  # None until the row is flushed; every row read has one
    ext_id: str = Field(max_length=128, unique=True)
    partner_id: int = Field(foreign_key="partner.id")
    occurred_at: datetime
    amount_fen: int = Field(sa_type=BigInteger)
    units: int = 0
    margin_fen: int | None = Field(default=None, sa_type=BigInteger)
    customer: str | None = Field(default=None, max_length=128)
    satisfaction: int | None = None
    imported_at: datetime


class Target(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("partner_id", "period_start", "period_end"),)

    id: int = Field(default=None, primary_key=True)  # None until the row is flushed; every row read has one
    partner_id: int = Field(foreign_key="partner.id", index=True)
    period_start: date
    period_end: date
    target_fen: int = Field(sa_type=BigInteger)
