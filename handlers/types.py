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
    message_ref: str | None = None  # the platform's id of the message, to answer it in a group (Telegram)


@dataclass(frozen=True)
class Button:
    label: str
    data: str
    web_app: str | None = None  # a Telegram Mini App's URL: the button opens it (private chats only)


# Who may see a reply (`Reply.audience`); in a group `handlers.dispatch.for_group` applies it.
PUBLIC = "public"  # public anyway (a board's top N, contest rules, help): may be posted in any group
TEAM = "team"  # a team's own news (its total): public only in a group linked to that team (`Reply.team_id`)
PRIVATE = "private"  # the asker's own (points, rank, a captain's member list, anything an admin asks)


@dataclass
class Reply:
    """What to say: a template and its context, in the recipient's language.

    `audience` says who may see it; when unsure, PRIVATE (the default). A personal reply can carry
    its `public` part (a `/rank`'s top N without one's own line), which a group gets instead.
    """

    template: str
    context: dict[str, Any] = field(default_factory=dict)
    locale: str = "zh"
    buttons: list[Button] = field(default_factory=list)
    audience: str = PRIVATE
    team_id: int | None = None
    public: Reply | None = None


@dataclass(frozen=True)
class ChatConfig:
    """What the core needs to know about the running program (handlers never read settings)."""

    timezone: str = "Asia/Shanghai"
    default_locale: str = "zh"
    bot_username: str = "MianziBot"
    max_text: int = 100_000
    bind_limits: BindLimits = BindLimits()  # the invite throttle (settings MIANZI_INVITE_MAX_FAILURES …)
    # The console's sign-in page (`MIANZI_PUBLIC_URL` + /admin/signin), None when that URL is not set
    console_signin_url: str | None = None
    # The dealer page (bot/dealer, `MIANZI_PUBLIC_URL` + /me/…), None when it cannot be opened there:
    # Telegram's Mini App button (https only, as Telegram requires), WeChat's and WeCom's OAuth entries.
    dealer_page_url: str | None = None
    dealer_wechat_url: str | None = None
    dealer_wecom_url: str | None = None

    def dealer_link(self, platform: str) -> str | None:
        """The dealer page's entry link for a chat on `platform` (Telegram uses its button instead)."""
        return {"wechat": self.dealer_wechat_url, "wecom": self.dealer_wecom_url}.get(platform)
