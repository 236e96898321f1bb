"""The meeting-room board of a contest: what a TV may show (public things only) and what to celebrate.

Only the public board (`views.public_board`: the top N, at most ten, never a line below) and counts
without names (how many reached each tier) leave here; a team contest's board is its teams. A
celebration names someone only when they are on the public board: a new first place, or a line of
the board reaching a tier it did not have; a tier reached below the board is counted, unnamed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlmodel import Session

from handlers import views
from models import contests as contest_ops
from models import standings
from models.rows import AnyContest
from models.values import as_utc


@dataclass(frozen=True)
class Board:
    contest: dict[str, Any]
    top: list[dict[str, Any]]
    ranked: int
    tiers: list[dict[str, Any]]  # each tier of the contest, highest first, with how many reached it
    status: str
    seconds_left: int | None  # to the end (active), to the start (upcoming); None otherwise
    leader: tuple[str, ...]  # the names at rank 1
    tiered: dict[str, str | None]  # name → tier, for the lines on the board


def board_view(session: Session, contest: AnyContest, now: datetime) -> Board:
    """The board now, from fresh standings (a stale cache is rebuilt first, as `/rank` does)."""
    contest = views.fresh(session, contest)
    top, ranked = views.public_board(session, contest)
    counts = standings.tier_counts_by_score(session, contest=contest)
    state = contest_ops.status(contest, now)
    target = {"active": contest.end_at, "upcoming": contest.start_at}.get(state)
    left = max(0, int((as_utc(target) - now).total_seconds())) if target is not None else None
    tiers = [{"name": tier["name"], "threshold": tier["threshold"], "count": counts.get(tier["name"], 0)}
             for tier in reversed(contest.tiers)]
    return Board(views.contest_info(contest, now), top, ranked, tiers, state, left,
                 tuple(x["name"] for x in top if x["rank"] == 1),
                 {x["name"]: x["tier"] for x in top})


def celebrations(before: Board | None, after: Board) -> list[dict[str, Any]]:
    """What changed worth a cheer between two looks at the board: `leader` (a new first place),
    `tier` (someone on the board reached a tier), `tier_count` (more reached a tier, unnamed)."""
    if before is None or before.contest["id"] != after.contest["id"]:
        return []
    found: list[dict[str, Any]] = []
    if after.leader and after.leader != before.leader and after.top and after.top[0]["score"] > 0:
        found.append({"kind": "leader", "names": list(after.leader)})
    named: set[str] = set()
    height = {tier["name"]: -i for i, tier in enumerate(after.tiers)}  # the tiers come highest first
    for name, tier in after.tiered.items():
        old = before.tiered.get(name)
        if tier is not None and (old is None or height.get(tier, 0) > height.get(old, 0)):
            found.append({"kind": "tier", "name": name, "tier": tier})
            named.add(tier)
    old_counts = {level["name"]: level["count"] for level in before.tiers}
    for level in after.tiers:
        more = level["count"] - old_counts.get(level["name"], 0)
        if more > 0 and level["name"] not in named:
            found.append({"kind": "tier_count", "tier": level["name"], "count": more})
    return found
