"""Queries about the group chats linked to teams (`/linkgroup`)."""

from __future__ import annotations

from collections.abc import Collection

from sqlalchemy import select
from sqlmodel import Session, col

from models.tables import TeamChat


def linked_groups(session: Session, *, platforms: Collection[str] | None = None) -> list[TeamChat]:
    """Every linked group (on `platforms` only, if given), oldest link first."""
    stmt = select(TeamChat)
    if platforms is not None:
        stmt = stmt.where(col(TeamChat.platform).in_(platforms))
    return list(session.execute(stmt.order_by(col(TeamChat.id))).scalars())


def linked_team_ids(session: Session, *, platform: str, chat_ref: str) -> set[int]:
    """The teams this group chat is linked to."""
    return set(session.execute(select(col(TeamChat.team_id)).where(
        col(TeamChat.platform) == platform, col(TeamChat.chat_ref) == chat_ref)).scalars())
