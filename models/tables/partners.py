"""Partners and their teams."""

from __future__ import annotations

from datetime import date

from sqlalchemy import Index
from sqlmodel import Field, SQLModel

from models.kinds import Role

ROLES = tuple(Role)


class Team(SQLModel, table=True):
    id: int = Field(default=None, primary_key=True)  # None until the row is flushed; every row read has one
    code: str = Field(max_length=64, unique=True)
    name: str = Field(max_length=200)


class Partner(SQLModel, table=True):
    __table_args__ = (Index("ix_partner_region", "region", "active", "role"),)  # the dashboard's regions

    id: int = Field(default=None, primary_key=True)  # None until the row is flushed; every row read has one
    code: str = Field(max_length=64, unique=True)
    name: str = Field(max_length=200)
    team_id: int | None = Field(default=None, foreign_key="team.id", index=True)
    region: str | None = Field(default=None, max_length=64)
    city_tier: int | None = None
    industry: str | None = Field(default=None, max_length=64)
    size: str | None = Field(default=None, max_length=32)
    joined_on: date | None = None
    role: str = Field(default=Role.DEALER, max_length=16)
    locale: str = Field(default="zh", max_length=8)
    active: bool = True
