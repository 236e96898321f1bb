"""The meeting-room boards: a contest's public board at a URL with an unguessable token, revocable."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Field, SQLModel


class BoardLink(SQLModel, table=True):
    """A link to a contest's TV board (`/board/<token>`): shows only what is public (the top N, tiers
    reached, the time left), so the token is kept as it is — the admin copies the link again later.
    A revoked link shows nothing any more."""

    id: int = Field(default=None, primary_key=True)  # None until the row is flushed; every row read has one
    token: str = Field(max_length=64, unique=True)
    contest_id: int = Field(foreign_key="contest.id", index=True)
    created_by: int | None = Field(default=None, foreign_key="partner.id")
    created_at: datetime
    revoked_at: datetime | None = None
