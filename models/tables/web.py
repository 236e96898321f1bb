"""The web pages' sign-in: one-time links, sessions (the admin console, later the dealer page), the audit log.

Tokens are never stored: a link's and a session's rows keep the SHA-256 of the token handed out,
so a copy of the database signs nobody in.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON
from sqlmodel import Field, SQLModel


class SignInLink(SQLModel, table=True):
    """A one-time sign-in link (`mianzi admin link`, chat `/console`): valid until `expires_at`, once."""

    id: int = Field(default=None, primary_key=True)  # None until the row is flushed; every row read has one
    token_hash: str = Field(max_length=64, unique=True)
    partner_id: int = Field(foreign_key="partner.id", index=True)
    kind: str = Field(max_length=16)  # console | dealer (models.kinds.WebKind)
    created_at: datetime
    expires_at: datetime
    used_at: datetime | None = None


class WebSession(SQLModel, table=True):
    """A signed-in browser: its cookie's hash, who, which pages (`kind`), its CSRF token, its idle expiry."""

    id: int = Field(default=None, primary_key=True)  # None until the row is flushed; every row read has one
    token_hash: str = Field(max_length=64, unique=True)
    partner_id: int = Field(foreign_key="partner.id", index=True)
    kind: str = Field(max_length=16)
    csrf_token: str = Field(max_length=64)
    created_at: datetime
    last_seen_at: datetime
    expires_at: datetime  # last seen + the idle time (MIANZI_SESSION_IDLE_HOURS), moved on as it is used
    ended_at: datetime | None = None  # signed out


class AuditEntry(SQLModel, table=True):
    """One action taken in the console: who, what, when, on which object, and its details."""

    id: int = Field(default=None, primary_key=True)  # None until the row is flushed; every row read has one
    at: datetime = Field(index=True)
    partner_id: int | None = Field(default=None, foreign_key="partner.id", index=True)
    action: str = Field(max_length=64)  # `session.sign_in`, `partner.unbind`, `import.sales` …
    object_kind: str | None = Field(default=None, max_length=32)
    object_ref: str | None = Field(default=None, max_length=128)
    details: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
