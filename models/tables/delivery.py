"""What goes out to the platforms (the outbox), what came in (seen deliveries) and the platforms' access tokens."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Index, UniqueConstraint, text
from sqlmodel import Field, SQLModel

from models.kinds import OutboxStatus

OUTBOX_STATUSES = tuple(OutboxStatus)


class InboundSeen(SQLModel, table=True):
    """Platform deliveries already handled (Telegram update_id, WeChat MsgId …), so retries run once."""

    __table_args__ = (UniqueConstraint("platform", "key"),)

    id: int = Field(default=None, primary_key=True)  # None until the row is flushed; every row read has one
    platform: str = Field(max_length=16)
    key: str = Field(max_length=128)
    seen_at: datetime = Field(index=True)


class Outbox(SQLModel, table=True):
    """Every push, one row per recipient and channel, before it is sent (DESIGN §3 rule 2).

    `key` makes queuing idempotent (`broadcast:42:partner:1007`). The delivery worker claims due
    rows by setting `status=sending` with a lease; a crashed worker's lease expires and another
    worker sends the row again, which bounds duplicates to the rows in flight at the crash.
    """

    __table_args__ = (Index("ix_outbox_due", "status", "next_attempt_at"),
                      Index("ix_outbox_created", "created_at", "platform", "status"),  # the last day's pushes
                      Index("ix_outbox_window", "platform", "status", "created_at"),  # … counted per channel, status
                      Index("ix_outbox_errors", "created_at", "platform", "status", "last_error",  # … and why not sent
                            sqlite_where=text("last_error IS NOT NULL"),
                            postgresql_where=text("last_error IS NOT NULL")))

    id: int = Field(default=None, primary_key=True)  # None until the row is flushed; every row read has one
    key: str = Field(max_length=200, unique=True)
    kind: str = Field(max_length=32)  # broadcast, result, announcement, reminder, reply …
    batch_id: int | None = Field(default=None, index=True)  # the broadcast (or other batch) it belongs to
    partner_id: int | None = Field(default=None, foreign_key="partner.id")
    identity_id: int | None = Field(default=None, foreign_key="chatidentity.id")
    platform: str = Field(max_length=16)
    chat_ref: str = Field(max_length=128)
    is_group: bool = False
    payload: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    status: str = Field(default=OutboxStatus.PENDING, max_length=16)
    attempts: int = 0
    next_attempt_at: datetime
    lease_until: datetime | None = None
    leased_by: str | None = Field(default=None, max_length=64)
    last_error: str | None = Field(default=None, max_length=500)
    created_at: datetime
    sent_at: datetime | None = None


class AccessToken(SQLModel, table=True):
    """Platform access tokens shared by every server process (WeChat invalidates older ones)."""

    id: int = Field(default=None, primary_key=True)  # None until the row is flushed; every row read has one
    app: str = Field(max_length=128, unique=True)  # e.g. wechat:<appid>, wecom:<corpid>:<agentid>
    token: str = Field(max_length=1024)
    expires_at: datetime
    fetched_at: datetime
