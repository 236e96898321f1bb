"""The conversation: one entry point for every platform."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session

from handlers import feedback
from handlers.commands import COMMANDS, say
from handlers.identity import identify
from handlers.parse import parse
from handlers.types import ChatConfig, Incoming, Reply
from models.values import utcnow


def dispatch(session: Session, incoming: Incoming, config: ChatConfig, now: datetime | None = None) -> list[Reply]:
    """Answer one incoming message. The caller commits the session (or rolls back on error).

    Bad input always gets a short, helpful answer: no text, a message too long to be a command,
    an unknown command, or a command that needs a bound account.
    """
    now = now or utcnow()
    asker = identify(session, incoming, config, now)
    text = incoming.callback_data if incoming.callback_data is not None else incoming.text
    if text is None or not text.strip():
        return [] if incoming.is_group else [say(asker, "chat.no_text")]
    if len(text) > config.max_text:
        return [] if incoming.is_group else [say(asker, "chat.too_long", max=config.max_text)]
    command = parse(text, config.bot_username)
    if not command.name:
        # In a group, stay quiet unless addressed with a command: a bot that answers every
        # line of a busy WeChat-style group is the noise the program is meant to replace.
        if incoming.is_group:
            return []
        comment = feedback.comment_reply(session, asker, text, now)  # free text right after a survey rating
        if comment:
            return comment
        return [say(asker, "chat.unknown" if asker.member else "chat.need_bind")]
    handler, needs_partner = COMMANDS[command.name]
    if needs_partner and asker.member is None:
        return [say(asker, "chat.need_bind")]
    return handler(session, asker, command.args, config, now)
