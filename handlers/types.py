"""The neutral shapes that cross between adapters and the core (opsdroid-style connectors).

An adapter turns a platform update into an `Incoming`, asks `handlers.dispatch`, and turns each
`Reply` into the platform's call. Nothing here knows any platform library.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from models.identities import BindLimits


@dataclass(frozen=True)
class Incoming:
    platform: str  # telegram | wechat | wecom | console
    user_ref: str  # the platform's user id (Telegram user id, WeChat OpenID, WeCom UserID)
    chat_ref: str  # where to answer (a private chat, or a group)
    text: str | None  # None for stickers, photos, voice …
    locale_hint: str | None = None  # the platform's language code, for people not yet bound
    is_group: bool = False
    display_name: str | None = None
    callback_data: str | None = None  # an inline button press (Telegram) or a menu key


@dataclass(frozen=True)
class Button:
    label: str
    data: str


@dataclass
class Reply:
    """What to say: a template and its context, in the recipient's language."""

    template: str
    context: dict[str, Any] = field(default_factory=dict)
    locale: str = "zh"
    buttons: list[Button] = field(default_factory=list)


@dataclass(frozen=True)
class ChatConfig:
    """What the core needs to know about the running program (handlers never read settings)."""

    timezone: str = "Asia/Shanghai"
    default_locale: str = "zh"
    bot_username: str = "MianziBot"
    max_text: int = 100_000
    bind_limits: BindLimits = BindLimits()  # the invite throttle (settings MIANZI_INVITE_MAX_FAILURES …)
