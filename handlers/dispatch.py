"""The conversation: one entry point for every platform."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from sqlmodel import Session

from handlers import feedback, registry
from handlers.identity import Asker, identify
from handlers.notify import say
from handlers.parse import Command, parse
from handlers.types import PRIVATE, PUBLIC, TEAM, ChatConfig, Incoming, Reply
from models import team_chats
from models.errors import DataError
from models.values import utcnow


def dispatch(session: Session, incoming: Incoming, config: ChatConfig, now: datetime | None = None) -> list[Reply]:
    """Answer one incoming message. The caller commits the session (or rolls back on error).

    Bad input always gets a short, helpful answer: no text, a message too long to be a command,
    an unknown command, a command that needs a bound account or another role, or a `DataError`
    (its message key) from the handler.

    In a group, each reply comes back with its audience settled by `for_group`: PUBLIC ones are
    for the group, PRIVATE ones for the asker's private chat (the adapter delivers them there).
    """
    replies = _dispatch(session, incoming, config, now)
    return for_group(session, incoming, replies) if incoming.is_group else replies


def for_group(session: Session, incoming: Incoming, replies: list[Reply]) -> list[Reply]:
    """The one rule of privacy in groups: a group sees only what is public anyway.

    A PUBLIC reply stays in the group; a TEAM reply too when the group is linked to its team; anything
    else goes to the asker alone, and its `public` part (if any, and public here) to the group.
    """
    linked: set[int] | None = None

    def public_here(reply: Reply) -> bool:
        nonlocal linked
        if reply.audience == PUBLIC:
            return True
        if reply.audience != TEAM or reply.team_id is None:
            return False
        if linked is None:
            linked = team_chats.linked_team_ids(session, platform=incoming.platform, chat_ref=incoming.chat_ref)
        return reply.team_id in linked

    settled: list[Reply] = []
    for reply in replies:
        if public_here(reply):
            settled.append(replace(reply, audience=PUBLIC, public=None))
            continue
        settled.append(replace(reply, audience=PRIVATE, public=None))
        if reply.public is not None and public_here(reply.public):
            settled.append(replace(reply.public, audience=PUBLIC, public=None))
    return settled


def _dispatch(session: Session, incoming: Incoming, config: ChatConfig, now: datetime | None) -> list[Reply]:
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
    return run(session, asker, command, config, now)


def run(session: Session, asker: Asker, command: Command, config: ChatConfig, now: datetime) -> list[Reply]:
    """Run a recognised command as its declaration says (`handlers.registry.command`).

    Asked by someone not bound, a command that needs a partner answers `chat.need_bind`; asked by
    a role it is not for, `chat.admin_only` (the only restricted commands are the admins'). A
    `DataError` from the handler becomes its message: nothing was changed by that operation, and
    the caller commits what the handler did before it, as when the handler answered it itself.
    """
    spec = registry.table()[command.name]
    if spec.needs_partner and asker.member is None:
        return [say(asker, "chat.need_bind")]
    if not registry.may_run(spec, asker.role):
        return [say(asker, "chat.admin_only")]
    try:
        return spec.handler(session, asker, command.args, config, now)
    except DataError as exc:
        return [say(asker, exc.key, **exc.params)]
