"""Queries about partners and their teams (keyword-only, one per question a handler asks)."""

from __future__ import annotations

from collections.abc import Collection

from sqlalchemy import func, select
from sqlmodel import Session, col

from models.kinds import Role
from models.tables import Partner, Team


def partner_by_code_any_case(session: Session, *, code: str) -> Partner | None:
    """The partner whose code is `code` in any letter case (an admin's typed `/adjust CODE`)."""
    return session.execute(select(Partner).where(func.lower(col(Partner.code)) == code.lower())).scalars().first()


def partner_by_id(session: Session, *, partner_id: int) -> Partner | None:
    """The partner as an ORM object, for code that changes it (from the session's identity map if loaded)."""
    return session.get(Partner, partner_id)


def active_admin_ids(session: Session) -> list[int]:
    return list(session.execute(select(col(Partner.id)).where(col(Partner.role) == Role.ADMIN,
                                                              col(Partner.active).is_(True))).scalars())


def partner_names(session: Session, *, ids: Collection[int]) -> dict[int, str]:
    """Names by partner id (none asked, no query)."""
    if not ids:
        return {}
    return dict(session.execute(select(col(Partner.id), col(Partner.name)).where(col(Partner.id).in_(ids))).all())


def team_names(session: Session, *, ids: Collection[int]) -> dict[int, str]:
    """Names by team id (none asked, no query)."""
    if not ids:
        return {}
    return dict(session.execute(select(col(Team.id), col(Team.name)).where(col(Team.id).in_(ids))).all())


def team_members(session: Session, *, team_id: int) -> list[Partner]:
    """A team's active members by code, without admins."""
    return list(session.execute(select(Partner).where(col(Partner.team_id) == team_id, col(Partner.active).is_(True),
                                                      col(Partner.role) != Role.ADMIN)
                                .order_by(col(Partner.code))).scalars())
