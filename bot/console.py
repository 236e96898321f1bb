"""The terminal as a chat platform: the same handlers, replies printed instead of sent."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Engine

from handlers.dispatch import dispatch
from handlers.types import ChatConfig, Incoming
from messages.render import fit, render
from models.db import session_scope

MAX_CHARS = 4096


def converse(engine: Engine, user_ref: str, text: str, config: ChatConfig, now: datetime | None = None) -> str:
    """One exchange with the bot as the console user `user_ref`; returns the rendered replies."""
    incoming = Incoming(platform="console", user_ref=user_ref, chat_ref=user_ref, text=text)
    with session_scope(engine) as session:
        replies = dispatch(session, incoming, config, now)
        return "\n\n".join(fit(render(r.template, r.locale, **r.context), max_chars=MAX_CHARS) for r in replies)
