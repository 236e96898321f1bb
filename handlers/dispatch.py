"""The conversation: one entry point for every platform."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session

from handlers.types import ChatConfig, Incoming, Reply


def dispatch(session: Session, incoming: Incoming, config: ChatConfig, now: datetime | None = None) -> list[Reply]:
    """Answer one incoming message. The caller commits the session (or rolls back on error)."""
    raise NotImplementedError  # being written in handlers/commands.py; see issue 3
