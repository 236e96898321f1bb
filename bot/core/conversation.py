"""From an `Incoming` to texts ready to send, for every channel adapter.

The core (`handlers.dispatch`) runs in its own transaction; its replies are rendered in the
recipient's language and cut to the platform's limit. Whatever goes wrong inside, the user gets
one short apology and the operator gets the stack trace in the log, never the other way round.
Everything here is blocking (database, jinja): adapters call `answer` through their runner
(`bot.core.runner`: a thread of the server, or the core process) — the same call either way.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine
from sqlmodel import Session

import handlers.dispatch
from bot.console import SIGNIN as CONSOLE_SIGNIN
from bot.core.dedupe import Nonce, keys_for
from bot.core.runner import groupable
from bot.dealer import PAGE as DEALER_PAGE
from bot.dealer import WECHAT_START, WECOM_START
from bot.settings import Settings
from handlers.types import PUBLIC, Button, ChatConfig, Incoming, Reply
from messages.locales import locale_for
from messages.render import render, t
from models import identities, outbox
from models.db import session_scope
from models.inbound_seen import KEY_LENGTH
from models.values import utcnow

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


def bind_limits(settings: Settings) -> identities.BindLimits:
    """The invite throttle's limits (`MIANZI_INVITE_MAX_FAILURES` …), for the core's `ChatConfig`."""
    return identities.BindLimits(account_failures=settings.invite_max_failures,
                                 global_failures=settings.invite_max_failures_global,
                                 window=timedelta(minutes=settings.invite_failure_window_minutes))


def chat_config(settings: Settings, *, max_text: int | None = None, bot_username: str | None = None) -> ChatConfig:
    """What the core needs from the settings, for one channel: the longest text it takes as a
    message (`max_text`), and the bot's name when the platform told us (it overrides the setting)."""
    config = ChatConfig(timezone=settings.timezone, default_locale=settings.locale,
                        bot_username=bot_username or settings.telegram_bot_username,
                        bind_limits=bind_limits(settings),
                        console_signin_url=settings.public_link(CONSOLE_SIGNIN), **dealer_urls(settings))
    return config if max_text is None else replace(config, max_text=max_text)


def dealer_urls(settings: Settings) -> dict[str, Any]:
    """The dealer page's entries for `ChatConfig`: only where `MIANZI_PUBLIC_URL` is set, the Mini
    App only on https (Telegram refuses a web_app button otherwise), WeChat's and WeCom's only when
    their OAuth can run."""
    page = settings.public_link(DEALER_PAGE)
    return {"dealer_page_url": page if page and page.lower().startswith("https://") else None,
            "dealer_wechat_url": settings.public_link(WECHAT_START) if settings.sends("wechat") else None,
            "dealer_wecom_url": settings.public_link(WECOM_START) if settings.sends("wecom") else None}


class _Taken(Exception):
    """The delivery's key was claimed before: nothing runs and nothing of this attempt is kept."""


class Replayed(Exception):
    """The request's signed (timestamp, nonce) came before with another message: refuse it."""


@dataclass(frozen=True)
class Delivery:
    """How one inbound delivery is claimed, and what comes with it besides its text.

    Everything here crosses to the core process, so it is plain data.
    """

    key: str | None = None  # the platform's delivery id (update_id, MsgId): taken already → nothing runs
    nonce: Nonce | None = None  # the request's signed (timestamp, nonce): taken by another message → `Replayed`
    follow: bool | None = None  # the account can (True: a follow) or cannot (False: an unfollow) be pushed to
    run: bool = True  # False: claim only (an unfollow, an event we do not act on)
    queue: bool = False  # the replies go to the outbox in this transaction (a WeCom group: no direct answer)


@groupable
def answer(engine: Engine, incoming: Incoming, config: ChatConfig, fit: Fit,
           now: datetime | None = None, delivery: Delivery | None = None) -> list[Outgoing] | None:
    """The one answer path of every channel: claim, dispatch, render and cut to length, in one
    transaction; on any error nothing is kept and the asker gets one short apology.

    Rendering inside the transaction means a reply that cannot be shown also undoes what it
    reports (a bind, a language switch), so the user's next try starts from the same state. The
    delivery's key (with the request's nonce, in the same statement) is the transaction's first
    statement (`bot.core.dedupe`): None is returned when
    it was taken already — the delivery was handled before (a concurrent attempt in another process
    waits on the unique index until the first commits) — and nothing ran. A failure rolls the claim
    back with everything else, so a retry runs again.
    """
    delivery = delivery or Delivery()
    keys = keys_for(engine, delivery.nonce.keep if delivery.nonce is not None else None)
    claims = [k for k in (delivery.key, delivery.nonce.key if delivery.nonce is not None else None) if k is not None]
    try:
        with session_scope(engine) as session:
            if claims:  # the key and the nonce in one statement; a key taken rolls the nonce's claim back
                ours = keys.claim_all(session.connection(), incoming.platform, claims)
                if delivery.key is not None and delivery.key[:KEY_LENGTH] not in ours:
                    raise _Taken
                if delivery.nonce is not None and delivery.nonce.key[:KEY_LENGTH] not in ours:
                    raise Replayed(delivery.key)
            if delivery.follow is not None:
                identities.set_active(session, platform=incoming.platform, user_ref=incoming.user_ref,
                                      active=delivery.follow)
            if not delivery.run:
                return []
            replies = handlers.dispatch.dispatch(session, incoming, config, now)
            outs = [out for out in (rendered(reply, fit, incoming.is_group) for reply in replies) if out.text]
            if delivery.queue:
                queue_replies(session, incoming, config, delivery.key or "", outs)
                return []
            return outs
    except _Taken:
        return None
    except Replayed:
        raise
    except Exception:
        log.exception("dispatch failed for %s message in chat %s", incoming.platform, incoming.chat_ref)
        return [apology(incoming, config, fit)]


def queue_replies(session: Session, incoming: Incoming, config: ChatConfig, key: str, outs: list[Outgoing]) -> None:
    """Replies that cannot be answered directly, as outbox rows: the asker's own in one message to
    them, the group's part and the line saying the rest went privately in one message to the group."""
    own = [out for out in outs if out.private]
    public = [out.text for out in outs if not out.private]
    if own:
        public.append(group_notice(own, True, config))  # WeCom can message a member at any time
    identity = identities.active_identity(session, platform=incoming.platform, user_ref=incoming.user_ref)
    now = utcnow()
    base = f"reply:{incoming.platform}:{key.split(':', 1)[-1]}"[:180]
    rows = []
    if own:
        rows.append({"key": f"{base}:private", "kind": "reply", "partner_id": identity.partner_id if identity else None,
                     "identity_id": identity.id if identity else None, "platform": incoming.platform,
                     "chat_ref": incoming.user_ref, "payload": {"text": "\n\n".join(out.text for out in own)},
                     "next_attempt_at": now})
    if public:
        rows.append({"key": f"{base}:group", "kind": "reply", "platform": incoming.platform, "is_group": True,
                     "chat_ref": incoming.chat_ref, "payload": {"text": "\n\n".join(public)}, "next_attempt_at": now})
    outbox.queue(session, rows, now)


def rendered(reply: Reply, fit: Fit, in_group: bool = False) -> Outgoing:
    """`in_group`: the reply answers a group message, so all but PUBLIC ones are for the asker alone."""
    text = fit(render(reply.template, reply.locale, **reply.context))
    return Outgoing(text=text, buttons=list(reply.buttons), private=in_group and reply.audience != PUBLIC,
                    locale=reply.locale)


def apology(incoming: Incoming, config: ChatConfig, fit: Fit) -> Outgoing:
    return Outgoing(text=fit(t("web.internal_error", locale_for(incoming.locale_hint, config.default_locale))))
