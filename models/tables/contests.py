"""Contests, their live standings and their frozen results."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Index
from sqlmodel import Field, SQLModel

from models.kinds import Scope


class Contest(SQLModel, table=True):
    id: int = Field(default=None, primary_key=True)  # None until the row is flushed; every row read has one
    name: str = Field(max_length=200)
    metric: str = Field(max_length=32)
    scope: str = Field(default=Scope.INDIVIDUAL, max_length=16)
    team_score: str = Field(default="sum", max_length=8)
    start_at: datetime = Field(index=True)
    end_at: datetime = Field(index=True)
    timezone: str = Field(default="Asia/Shanghai", max_length=64)
    grace_seconds: int = 0
    segment: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    min_tenure_days: int | None = None
    min_score: int | None = Field(default=None, sa_type=BigInteger)
    min_satisfaction: int | None = None
    prizes: list[dict[str, Any]] = Field(default_factory=list, sa_type=JSON)
    tiers: list[dict[str, Any]] = Field(default_factory=list, sa_type=JSON)
    top_n: int = 10
    recur: str = Field(default="none", max_length=16)
    previous_id: int | None = Field(default=None, foreign_key="contest.id", unique=True)
    created_at: datetime
    closed_at: datetime | None = Field(default=None, index=True)
    sales_at_close: int | None = None  # the period's sales the close saw; `late_sales` counts the others
    standings_dirty: bool = True
    standings_at: datetime | None = None
    # A contest on an average (satisfaction): fewer ratings than this in the period and a partner
    # is shown as not yet eligible (one 5-star rating does not beat a hundred near 4.9).
    min_ratings: int = 3
    featured: bool = False  # `排行` without a name shows the featured running contest first
    cancelled_at: datetime | None = None  # created by mistake: never closes, never pays, kept for the record
    cancelled_by: str | None = Field(default=None, max_length=64)


class _StandingColumns(SQLModel):
    """Shared shape of a live standing row and a frozen result row.

    `kind` is `partner` (individual contest), `team` (team contest) or `member` (a team member's
    contribution inside a team contest; never ranked by itself).
    """

    contest_id: int = Field(foreign_key="contest.id")
    kind: str = Field(max_length=8)
    partner_id: int | None = Field(default=None, foreign_key="partner.id")
    team_id: int | None = Field(default=None, foreign_key="team.id")
    score: int = Field(sa_type=BigInteger)
    reached_at: datetime | None = None
    eligible: bool
    reason: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    rank: int | None = None
    position: int | None = None
    tier: str | None = Field(default=None, max_length=32)
    prize_points: int = 0
    rebate_pct: str | None = Field(default=None, max_length=16)
    # The partner's (or team's) revenue in the period, frozen with the result: what a rebate is a
    # share of (`mianzi contests results`), whatever the contest's metric and whatever arrives late.
    revenue_fen: int | None = Field(default=None, sa_type=BigInteger)


def _line_indexes(prefix: str) -> tuple[Index, ...]:
    """The indexes of a table of standings lines (`ix_<prefix>_…`): the same questions are asked of
    the live cache and of the frozen results (`models.standings`)."""
    return (
        Index(f"ix_{prefix}_lookup", "contest_id", "kind", "partner_id"),
        Index(f"ix_{prefix}_team", "contest_id", "kind", "team_id", "position"),  # a team's lines in order
        Index(f"ix_{prefix}_position", "contest_id", "kind", "position"),
        Index(f"ix_{prefix}_score", "contest_id", "kind", "score", "position"),
    )


class Standing(_StandingColumns, table=True):
    """Live standings cache of an open contest; rebuilt from the sales ledger at any time."""

    # and how many reached each tier, from the index alone (the console's dashboard)
    __table_args__ = (*_line_indexes("standing"), Index("ix_standing_tier", "contest_id", "kind", "tier"))

    id: int = Field(default=None, primary_key=True)  # None until the row is flushed; every row read has one


class ContestResult(_StandingColumns, table=True):
    """Frozen at close: what everyone scored, their rank and prize, and the rule behind it."""

    __table_args__ = _line_indexes("result")

    id: int = Field(default=None, primary_key=True)  # None until the row is flushed; every row read has one


class ContestChange(SQLModel, table=True):
    """The log of changes to a contest after it was created: who, what (old and new values), when.

    `action` is `edit` or `cancel`; `changes` maps each changed field to `[old, new]` (JSON values).
    """

    id: int = Field(default=None, primary_key=True)  # None until the row is flushed; every row read has one
    contest_id: int = Field(foreign_key="contest.id", index=True)
    action: str = Field(max_length=16)
    changes: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    by: str = Field(max_length=64)
    at: datetime
    announced: int = 0  # messages queued to the participants about it
