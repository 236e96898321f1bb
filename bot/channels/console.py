"""The terminal as a chat platform: the same path as every adapter, replies printed instead of sent."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Engine

from bot.core.conversation import answer
from handlers.types import ChatConfig, Incoming
from messages.render import fit

MAX_CHARS = 4096


def converse(engine: Engine, user_ref: str, text: str, config: ChatConfig, now: datetime | None = None) -> str:
    """One exchange with the bot as the console user `user_ref`; returns the rendered replies."""
    incoming = Incoming(platform="console", user_ref=user_ref, chat_ref=user_ref, text=text)
    replies = answer(engine, incoming, config, lambda body: fit(body, max_chars=MAX_CHARS), now)
    return "\n\n".join(out.text for out in replies or [])
