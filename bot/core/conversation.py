"""From an `Incoming` to texts ready to send, for every channel adapter.

The core (`handlers.dispatch`) runs in its own transaction; its replies are rendered in the
recipient's language and cut to the platform's limit. Whatever goes wrong inside, the user gets
one short apology and the operator gets the stack trace in the log, never the other way round.
Everything here is blocking (database, jinja): adapters call `answer` in a worker thread.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Engine

import handlers.dispatch
from bot.core.dedupe import keys_for
from bot.settings import Settings, bind_limits
from handlers.types import PUBLIC, Button, ChatConfig, Incoming, Reply
from messages.locales import locale_for
from messages.render import render, t
from models.db import session_scope

log = logging.getLogger("mianzi.conversation")

Fit = Callable[[str], str]


@dataclass(frozen=True)
class Outgoing:
    """One rendered message: for the chat the incoming message came from, or (`private`, asked in a
    group) for the asker's private chat."""

    text: str
    buttons: list[Button] = field(default_factory=list)
    private: bool = False
    locale: str = "zh"


def group_notice(outs: list[Outgoing], reached: bool, config: ChatConfig) -> str:
    """The group's one line about what went privately: sent, or how to open the private chat first."""
    locale = next((o.locale for o in outs if o.private), config.default_locale)
    return t("chat.sent_privately" if reached else "chat.open_private", locale, bot=config.bot_username)


def chat_config(settings: Settings, bot_username: str | None = None) -> ChatConfig:
    """What the core needs from the settings; `bot_username` overrides the setting when the platform told us."""
    return ChatConfig(timezone=settings.timezone, default_locale=settings.locale,
                      bot_username=bot_username or settings.telegram_bot_username,
                      bind_limits=bind_limits(settings))


def answer(engine: Engine, incoming: Incoming, config: ChatConfig, fit: Fit,
           now: datetime | None = None, claim: str | None = None) -> list[Outgoing] | None:
    """Dispatch and render in one transaction; on any error, nothing is kept and an apology is sent.

    Rendering inside the transaction means a reply that cannot be shown also undoes what it
    reports (a bind, a language switch), so the user's next try starts from the same state.
    `claim`, when given, is the platform's delivery id (Telegram's `update_id`): it is claimed
    first, in the same transaction (`bot.core.dedupe`). None is returned when it was already taken:
    the delivery was handled before, and nothing ran.
    """
    try:
        with session_scope(engine) as session:
            if claim is not None and not keys_for(engine).claim(session.connection(), incoming.platform, claim):
                return None
            replies = handlers.dispatch.dispatch(session, incoming, config, now)
            return [out for out in (rendered(reply, fit, incoming.is_group) for reply in replies) if out.text]
    except Exception:
        log.exception("dispatch failed for %s message in chat %s", incoming.platform, incoming.chat_ref)
        return [apology(incoming, config, fit)]


def rendered(reply: Reply, fit: Fit, in_group: bool = False) -> Outgoing:
    """`in_group`: the reply answers a group message, so all but PUBLIC ones are for the asker alone."""
    text = fit(render(reply.template, reply.locale, **reply.context))
    return Outgoing(text=text, buttons=list(reply.buttons), private=in_group and reply.audience != PUBLIC,
                    locale=reply.locale)


def apology(incoming: Incoming, config: ChatConfig, fit: Fit) -> Outgoing:
    return Outgoing(text=fit(t("web.internal_error", locale_for(incoming.locale_hint, config.default_locale))))
