"""Segments: which partners an audience or a contest's participants are.

A segment (`parse_segment`'s dict: region, city tier, industry, size, role and team code) is
defined once, here, and read two ways: `matches` checks one partner in Python (a reply has the
partner's row in hand already), `where` filters a query in SQL (choosing the recipients of a
push). Both take the fields from `_FIELDS` and the team by its code.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, TypeVar

from sqlalchemy import Select, select
from sqlmodel import Session, col

from models.rows import Member
from models.tables import Partner, Team

# Partner fields a segment can name, each with how its typed value is compared (city tiers are numbers).
_FIELDS: dict[str, type] = {"region": str, "industry": str, "size": str, "role": str, "city_tier": int}

S = TypeVar("S", bound="Select[*tuple[Any, ...]]")  # a string: SQLAlchemy 2.0 has no variadic Select


def _wanted(segment: dict[str, Any]) -> Iterator[tuple[str, Any]]:
    for key, kind in _FIELDS.items():
        if key in segment:
            value = segment[key]
            yield key, int(value) if kind is int else value


def matches(session: Session, segment: dict[str, Any], partner: Partner | Member) -> bool:
    """Whether `partner` is in `segment`."""
    for key, value in _wanted(segment):
        if getattr(partner, key) != value:
            return False
    if "team" in segment:
        team = session.get(Team, partner.team_id) if partner.team_id else None
        if team is None or team.code != segment["team"]:
            return False
    return True


def where(stmt: S, segment: dict[str, Any]) -> S:
    """`stmt` (a query that has `Partner` in it) kept to the partners in `segment`."""
    for key, value in _wanted(segment):
        stmt = stmt.where(getattr(Partner, key) == value)
    if "team" in segment:
        stmt = stmt.where(col(Partner.team_id).in_(select(col(Team.id)).where(col(Team.code) == segment["team"])))
    return stmt
