"""Teams and the group chats linked to them (`/team`, `/linkgroup`)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlmodel import Session, col

from models.tables import Partner, Team, TeamChat


def team_by_id(session: Session, *, team_id: int) -> Team | None:
    """The team as an ORM object (from the session's identity map if loaded)."""
    return session.get(Team, team_id)


def find(session: Session, *, ref: str) -> Team | None:
    """The team a chat argument names, by its code or its name as typed."""
    return session.execute(select(Team).where((col(Team.code) == ref) | (col(Team.name) == ref))).scalars().first()


def sizes(session: Session) -> list[tuple[str, str, int]]:
    """Every team's code, name and number of partners, by code."""
    rows = session.execute(select(col(Team.code), col(Team.name), func.count(col(Partner.id)))
                           .join(Partner, col(Partner.team_id) == Team.id, isouter=True)
                           .group_by(col(Team.id), col(Team.code), col(Team.name)).order_by(col(Team.code))).all()
    return [(code, name, int(size)) for code, name, size in rows]


def link_chat(session: Session, *, team_id: int, platform: str, chat_ref: str, now: datetime) -> None:
    """Link a group chat to a team (a group already linked to another team moves to this one)."""
    link = session.execute(select(TeamChat).where(col(TeamChat.platform) == platform,
                                                  col(TeamChat.chat_ref) == chat_ref)).scalars().first()
    if link is None:
        session.add(TeamChat(team_id=team_id, platform=platform, chat_ref=chat_ref, linked_at=now))
    else:
        link.team_id, link.linked_at = team_id, now
