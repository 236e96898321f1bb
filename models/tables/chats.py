"""Chat accounts bound to partners, the invites that bind them, and team group chats."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from models.kinds import Platform

PLATFORMS = tuple(Platform)


class Invite(SQLModel, table=True):
    """A one-time code that binds a chat account to a partner."""

    id: int = Field(default=None, primary_key=True)  # None until the row is flushed; every row read has one
    code: str = Field(max_length=32, unique=True)
    partner_id: int = Field(foreign_key="partner.id", index=True)
    created_at: datetime
    expires_at: datetime
    used_at: datetime | None = None


class ChatIdentity(SQLModel, table=True):
    """A partner's account on one platform; a partner may be bound on several."""

    __table_args__ = (UniqueConstraint("platform", "user_ref"),
                      Index("ix_chatidentity_bound", "partner_id", "active", "platform"))  # who is bound where

    id: int = Field(default=None, primary_key=True)  # None until the row is flushed; every row read has one
    partner_id: int = Field(foreign_key="partner.id", index=True)
    platform: str = Field(max_length=16)
    user_ref: str = Field(max_length=128)
    chat_ref: str | None = Field(default=None, max_length=128)
    active: bool = True
    bound_at: datetime
    last_seen_at: datetime | None = None
    # WeChat's customer-service window: free-form pushes only within 48 h of the user's last
    # message, and at most 5 of them per window; the count restarts with each user message.
    window_pushes: int = 0


class TeamChat(SQLModel, table=True):
    """A group chat linked to a team (`/linkgroup`), where team news can be posted."""

    __table_args__ = (UniqueConstraint("platform", "chat_ref"),)

    id: int = Field(default=None, primary_key=True)  # None until the row is flushed; every row read has one
    team_id: int = Field(foreign_key="team.id", index=True)
    platform: str = Field(max_length=16)
    chat_ref: str = Field(max_length=128)
    linked_at: datetime


class BindFailure(SQLModel, table=True):
    """A failed bind (a wrong, used or expired invite code) by one chat account, for the throttle
    (`models.identities`); rows older than the throttle's window are pruned as new ones come."""

    __table_args__ = (Index("ix_bindfailure_account", "platform", "user_ref", "failed_at"),)

    id: int = Field(default=None, primary_key=True)  # None until the row is flushed; every row read has one
    platform: str = Field(max_length=16)
    user_ref: str = Field(max_length=128)
    failed_at: datetime = Field(index=True)
