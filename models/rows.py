"""Plain, read-only rows for the hot path of a chat message (no ORM objects to build).

Loading ORM entities costs several times the indexed query behind them; a message that only
reads (`/rank` and most others) gets these instead. Their fields carry the names of the table's
columns, so code that reads a partner or a contest reads either.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING, Any, TypeAlias

if TYPE_CHECKING:  # not at run time: `models.plain` reads these rows without SQLAlchemy
    from models.tables import Contest


@dataclass(frozen=True)
class Member:
    """The asker's partner row as read for answering: plain values, no ORM object to build.

    Most messages only read who is asking (`/rank` and the like); a handler that changes the
    partner asks for `Asker.partner`, the ORM object.
    """

    id: int
    code: str
    name: str
    team_id: int | None
    region: str | None
    city_tier: int | None
    industry: str | None
    size: str | None
    joined_on: date | None
    role: str
    locale: str
    active: bool


@dataclass(frozen=True)
class ContestRow:
    """A contest as read for answering (`handlers.views.open_contests`): the `Contest` columns."""

    id: int
    name: str
    metric: str
    scope: str
    team_score: str
    start_at: datetime
    end_at: datetime
    timezone: str
    grace_seconds: int
    segment: dict[str, Any]
    min_tenure_days: int | None
    min_score: int | None
    min_satisfaction: int | None
    prizes: list[dict[str, Any]]
    tiers: list[dict[str, Any]]
    top_n: int
    recur: str
    previous_id: int | None
    created_at: datetime
    closed_at: datetime | None
    standings_dirty: bool
    standings_at: datetime | None
    min_ratings: int
    featured: bool
    cancelled_at: datetime | None
    cancelled_by: str | None


AnyContest: TypeAlias = "Contest | ContestRow"
"""What the code that reads a contest accepts: the ORM object or the plain row."""
