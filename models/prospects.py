"""What if: how much more a partner must sell to take the next place, the next tier, the top 3 —
and where a given amount would put them today — from the live standings, by the contest's tie rule.

The tie rule (`models.standings`): higher score first, equal scores by who reached the score first.
A sale made now reaches its new score last of all, so passing a line means a strictly higher
score, and an amount's rank is one more than the lines (other than one's own) whose score is at
least the new one. Only for contests where a sale moves the score by a known rule (a "lever"):
money (revenue, margin: fen), counts (units, orders, new customers: each one 100 hundredths),
attainment (revenue against the partner's target, individual contests); in a team contest the
member's sale adds to the team's line when the team scores by its sum. Never satisfaction (a
rating is not sold) nor a team's average.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, func, select
from sqlmodel import Session

from models import standings
from models.db import read, table_of
from models.kinds import Metric, Scope
from models.rows import AnyContest
from models.rules import next_tier, tier_for
from models.tables import ContestResult, Standing
from models.values import ratio_hundredths

MONEY = "money"  # the lever's input: fen of a sale's amount (revenue) or margin
COUNT = "count"  # whole units, orders or new customers
TOP = 3


@dataclass(frozen=True)
class Lever:
    """How an added amount (fen, or a whole count) moves the ranking line's score."""

    unit: str  # MONEY | COUNT
    base: int  # the ranking line's score now
    revenue: int = 0  # attainment: the revenue and target behind the score
    target: int = 0

    def score_after(self, added: int) -> int:
        if self.target:
            return ratio_hundredths(self.revenue + added, self.target, 100)
        return self.base + (added * 100 if self.unit == COUNT else added)

    def needed(self, score: int) -> int:
        """The least added amount (≥ 0) whose score reaches `score`."""
        if self.score_after(0) >= score:
            return 0
        if self.target:  # ratio_hundredths rounds half up: start near the answer, then step exactly
            guess = max((score * self.target) // 10000 - self.revenue - 1, 0)
            while self.score_after(guess) >= score and guess > 0:
                guess -= 1
            while self.score_after(guess) < score:
                guess += 1
            return guess
        gap = score - self.base
        return -(-gap // 100) if self.unit == COUNT else gap


@dataclass(frozen=True)
class Prospect:
    """One goal: `kind` place (the next place up), top (rank 1..3), tier, or qualify (the minimum
    score, for a line held back by it); the amount that reaches it and where that amount puts the
    line (`rank`, `tier`)."""

    kind: str
    amount: int
    score: int
    rank: int | None  # None: still not ranked (the calculator, below the minimum score)
    tier: str | None
    goal_rank: int | None = None
    goal_tier: str | None = None


@dataclass(frozen=True)
class Outlook:
    unit: str
    line_kind: str  # partner | team: which line the dealer's sales move
    prospects: list[Prospect]


_TABLES = {Standing: table_of(Standing), ContestResult: table_of(ContestResult)}
# The highest score below a given one, then the first position holding it: two index probes, so
# that the rank a score would have costs the same at 100,000 lines as at ten (a COUNT of the lines
# at or above it would walk them).
_BELOW = {m: select(t.c.score).where(t.c.contest_id == bindparam("contest"), t.c.kind == bindparam("kind"),
                                     t.c.position.is_not(None), t.c.score < bindparam("score"))
          .order_by(t.c.score.desc()).limit(1) for m, t in _TABLES.items()}
_FIRST_AT = {m: select(func.min(t.c.position)).where(t.c.contest_id == bindparam("contest"),
                                                     t.c.kind == bindparam("kind"), t.c.position.is_not(None),
                                                     t.c.score == bindparam("score")) for m, t in _TABLES.items()}
_KTH = {m: select(t.c.score).where(t.c.contest_id == bindparam("contest"), t.c.kind == bindparam("kind"),
                                   t.c.position.is_not(None), t.c.position != bindparam("own"))
        .order_by(t.c.position).offset(bindparam("skip")).limit(1) for m, t in _TABLES.items()}


def lever(session: Session, *, contest: AnyContest, partner_id: int, team_id: int | None) -> tuple[Lever, Any] | None:
    """The lever of this partner's sales on the contest's ranking line, and that line; None when a
    sale does not move a score by a known rule (see the module docstring) or there is no line."""
    metric = contest.metric
    if metric == Metric.SATISFACTION:
        return None
    unit = MONEY if metric in (Metric.REVENUE, Metric.MARGIN, Metric.ATTAINMENT) else COUNT
    if contest.scope == Scope.TEAM:
        if contest.team_score != "sum" or metric == Metric.ATTAINMENT or team_id is None:
            return None
        member = standings.line_of_partner(session, contest, partner_id)
        if member is None or not member.eligible:  # a member who does not count adds nothing to the team
            return None
        line = standings.line_of_team(session, contest, team_id)
        return (Lever(unit, line.score), line) if line is not None and _sellable(line) else None
    line = standings.line_of_partner(session, contest, partner_id)
    if line is None or not _sellable(line):
        return None
    if metric == Metric.ATTAINMENT:
        target = standings.target_of(session, contest=contest, partner_id=partner_id)
        if not target:
            return None
        return Lever(unit, line.score, revenue=int(line.revenue_fen or 0), target=target), line
    return Lever(unit, line.score), line


def _sellable(line: Any) -> bool:
    """Whether selling more can rank the line: it is ranked, or held back only by the minimum score
    (not by tenure, a missing target, ratings — no sale changes those)."""
    return bool(line.eligible) or (line.reason or {}).get("code") == "not_eligible.min_score"


def rank_with(session: Session, *, contest: AnyContest, kind: str, score: int, own_position: int | None) -> int:
    """The rank a line of `kind` would have with `score` reached now (after every other line): one
    more than the other ranked lines scoring at least that much. Positions run 1..n in score order,
    so those lines are positions 1..k, k + 1 being the first line below the score."""
    table = standings.table_for(contest)
    params = {"contest": contest.id, "kind": kind, "score": score}
    below = read(session, _BELOW[table], params).first()
    if below is None:
        ahead = standings.ranked_count(session, contest=contest)
    else:
        first = read(session, _FIRST_AT[table], {**params, "score": below[0]}).scalar_one()
        ahead = int(first) - 1
    if own_position is not None and own_position <= ahead:
        ahead -= 1  # one's own line is not ahead of oneself
    return 1 + ahead


def _kth_other(session: Session, *, contest: AnyContest, kind: str, k: int, own_position: int | None) -> int | None:
    """The score of the k-th ranked line, not counting one's own."""
    params = {"contest": contest.id, "kind": kind, "skip": k - 1, "own": own_position or 0}
    row = read(session, _KTH[standings.table_for(contest)], params).first()
    return int(row[0]) if row is not None else None


def _prospect(session: Session, contest: AnyContest, line: Any, lev: Lever, kind: str, score: int,
              **goal: Any) -> Prospect:
    amount = lev.needed(score)
    new = lev.score_after(amount)
    tier = tier_for(contest.tiers, new)
    return Prospect(kind, amount, new, rank_with(session, contest=contest, kind=line.kind, score=new,
                                                 own_position=line.position), tier["name"] if tier else None, **goal)


def outlook(session: Session, *, contest: AnyContest, partner_id: int, team_id: int | None) -> Outlook | None:
    """The next place, the top 3 places above, the next tier: what each takes, where it leads."""
    found = lever(session, contest=contest, partner_id=partner_id, team_id=team_id)
    if found is None:
        return None
    lev, line = found
    out: list[Prospect] = []
    if not line.eligible and contest.min_score is not None:  # first of all: reach the minimum
        out.append(_prospect(session, contest, line, lev, "qualify", contest.min_score))
    rank = line.rank if line.eligible else None
    above = standings.next_above(session, contest, line) if line.position is not None else None
    if above is not None:
        out.append(_prospect(session, contest, line, lev, "place", int(above.score) + 1, goal_rank=above.rank))
    for k in range(1, TOP + 1):
        if rank is not None and rank <= k:
            break
        score = _kth_other(session, contest=contest, kind=line.kind, k=k, own_position=line.position)
        if score is None:
            break
        if any(p.score == score + 1 for p in out):
            continue
        out.append(_prospect(session, contest, line, lev, "top", score + 1, goal_rank=k))
    tier = next_tier(contest.tiers, lev.base)
    if tier is not None:
        out.append(_prospect(session, contest, line, lev, "tier", int(tier["threshold"]), goal_tier=tier["name"]))
    out.sort(key=lambda p: (p.amount, p.kind != "place"))
    return Outlook(lev.unit, line.kind, out)


def what_if(session: Session, *, contest: AnyContest, partner_id: int, team_id: int | None,
            added: int) -> Prospect | None:
    """Where `added` (fen, or a whole count) sold now would put the partner's ranking line today."""
    found = lever(session, contest=contest, partner_id=partner_id, team_id=team_id)
    if found is None or added < 0:
        return None
    lev, line = found
    new = lev.score_after(added)
    tier = tier_for(contest.tiers, new)
    if not line.eligible and contest.min_score is not None and new < contest.min_score:
        return Prospect("calc", added, new, None, None)  # still below the minimum: not ranked
    rank = line.rank if added == 0 and line.rank else rank_with(session, contest=contest, kind=line.kind, score=new,
                                                                own_position=line.position)
    return Prospect("calc", added, new, rank, tier["name"] if tier else None)
