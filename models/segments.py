"""Whether a partner belongs to a segment (an audience or a contest's participants)."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

from models.rows import Member
from models.tables import Partner, Team


def matches(session: Session, segment: dict[str, Any], partner: Partner | Member) -> bool:
    """Region, city tier, industry, size, role and team code, as `parse_segment` reads them."""
    for key in ("region", "industry", "size", "role"):
        if key in segment and getattr(partner, key) != segment[key]:
            return False
    if "city_tier" in segment and str(partner.city_tier) != str(segment["city_tier"]):
        return False
    if "team" in segment:
        team = session.get(Team, partner.team_id) if partner.team_id else None
        if team is None or team.code != segment["team"]:
            return False
    return True
