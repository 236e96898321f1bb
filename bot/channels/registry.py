"""Which push channels are on, from the settings: their senders and their ceilings."""

from __future__ import annotations

from sqlalchemy import Engine

from bot.channels.base import Sender
from bot.delivery.limiter import Ceilings
from bot.settings import Settings


def ceilings(settings: Settings) -> dict[str, Ceilings]:
    return {
        "telegram": Ceilings(settings.telegram_rate, settings.telegram_chat_interval,
                             settings.telegram_group_per_minute),
        "wechat": Ceilings(settings.wechat_rate, 0.0, 0),
        "wecom": Ceilings(settings.wecom_rate, settings.wecom_chat_interval, 20,
                          chat_per_hour=settings.wecom_chat_per_hour),
    }


def push_senders(settings: Settings, engine: Engine) -> dict[str, Sender]:
    """A sender per configured channel; rows for channels that are off simply wait in the outbox."""
    senders: dict[str, Sender] = {}
    if settings.sends("telegram") and settings.telegram_token:
        from bot.channels.telegram.push import TelegramPush

        senders["telegram"] = TelegramPush(settings.telegram_token, settings.telegram_api_url)
    if settings.sends("wechat"):
        from bot.channels.wechat.push import WeChatPush

        senders["wechat"] = WeChatPush(settings, engine)
    if settings.sends("wecom"):
        from bot.channels.wechat.push import WeComPush

        senders["wecom"] = WeComPush(settings, engine)
    return senders
