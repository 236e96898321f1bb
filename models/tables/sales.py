"""The sales ledger and the partners' targets."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import BigInteger, Index, UniqueConstraint, text
from sqlmodel import Field, SQLModel


class Sale(SQLModel, table=True):
    """Append-only ledger of sales facts; `ext_id` is the source system's id."""

    __table_args__ = (
        # amount and units too: a day's sales summed from the index alone (the console's dashboard)
        Index("ix_sale_occurred_partner", "occurred_at", "partner_id", "amount_fen", "units"),
        Index("ix_sale_partner_customer", "partner_id", "customer", "occurred_at"),
        # only the sales that reverse another (migration 0011): a plain sale, every imported one, has none
        Index("ix_sale_reverses", "reverses", unique=True, sqlite_where=text("reverses IS NOT NULL"),
              postgresql_where=text("reverses IS NOT NULL")),
        Index("ix_sale_imported_at", "imported_at"),  # the last import (models.dashboard)
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
    # A correcting entry (`models.corrections`): the id of the sale it cancels, whose negatives it
    # carries (amount, units, margin; the same rating, counted negatively), in the same period.
    reverses: int | None = None
    reason: str | None = Field(default=None, max_length=500)


MONTHLY_START, MONTHLY_END = date(1970, 1, 1), date(9999, 12, 31)


class Target(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("partner_id", "period_start", "period_end"),)

    id: int = Field(default=None, primary_key=True)  # None until the row is flushed; every row read has one
    partner_id: int = Field(foreign_key="partner.id", index=True)
    period_start: date
    period_end: date
    target_fen: int = Field(sa_type=BigInteger)
    # A recurring monthly amount (a targets row with period `monthly` / `每月`): the target of every
    # contest period within one calendar month that has no dated target of its own. Stored with the
    # period MONTHLY_START – MONTHLY_END, so one per partner.
    monthly: bool = False
