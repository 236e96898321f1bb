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


def set_locale(session: Session, *, partner_id: int, locale: str) -> None:
    """The language a partner reads the bot and the web pages in (the caller checks it is one of LOCALES)."""
    partner = session.get(Partner, partner_id)
    if partner is not None:
        partner.locale = locale
        session.add(partner)
        session.flush()


def partner_labels(session: Session, *, ids: Collection[int]) -> dict[int, tuple[str, str]]:
    """(code, name) by partner id (none asked, no query)."""
    if not ids:
        return {}
    rows = session.execute(select(col(Partner.id), col(Partner.code), col(Partner.name))
                           .where(col(Partner.id).in_(ids)))
    return {pid: (code, name) for pid, code, name in rows}


def team_labels(session: Session, *, ids: Collection[int]) -> dict[int, tuple[str, str]]:
    """(code, name) by team id (none asked, no query)."""
    if not ids:
        return {}
    rows = session.execute(select(col(Team.id), col(Team.code), col(Team.name)).where(col(Team.id).in_(ids)))
    return {tid: (code, name) for tid, code, name in rows}
