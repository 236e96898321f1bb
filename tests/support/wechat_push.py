"""Pushes to the Official Account and WeCom against the fake API: the settings that point both senders at it,
a partner's bound identity (how long since they last wrote, how many pushes their window has used), and a
sender run over some items and closed.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from sqlalchemy import Engine, select
from sqlmodel import Session

from bot.channels.base import OutboxItem, SendResult
from bot.channels.wechat.push import WeChatPush, WeComPush
from bot.settings import Settings
from models.db import session_scope
from models.tables import ChatIdentity, Partner
from models.values import utcnow
from tests.support import builders as b
from tests.support.fake_wechat import FakeWeixin
from tests.support.official_account import OPENID

TEMPLATE = "TPL-notice-0001"


def settings(db_url: str, fake: FakeWeixin, **overrides: Any) -> Settings:
    values: dict[str, Any] = {"database_url": db_url, "wechat_app_id": "wx0123456789abcdef",
                              "wechat_app_secret": "s3cret", "wechat_api_url": fake.base_url,
                              "wechat_template_id": None, "wecom_corp_id": "ww0123456789", "wecom_secret": "corp",
                              "wecom_agent_id": "1000002", "wecom_api_url": fake.base_url}
    values.update(overrides)
    return Settings(**values)


def identity(engine: Engine, seen_hours_ago: float | None = 1, pushes: int = 0, active: bool = True,
             platform: str = "wechat", user_ref: str = OPENID) -> int:
    """Partner P1's chat identity (created with P1 if need be): bound a month ago, last seen `seen_hours_ago`
    hours ago (None: never), `pushes` of its window used. Returns its id."""
    with session_scope(engine) as s:
        if s.execute(select(Partner).where(Partner.code == "P1")).first() is None:
            b.partners(s, {"code": "P1", "name": "经销商1"})
        partner = s.execute(select(Partner).where(Partner.code == "P1")).scalar_one()
        now = utcnow()
        row = ChatIdentity(partner_id=partner.id, platform=platform, user_ref=user_ref, chat_ref=user_ref,  # type: ignore[arg-type]
                           bound_at=now - timedelta(days=30), active=active, window_pushes=pushes,
                           last_seen_at=None if seen_hours_ago is None else now - timedelta(hours=seen_hours_ago))
        s.add(row)
        s.flush()
        return row.id  # type: ignore[return-value]


def pushes(engine: Engine, identity_id: int) -> int:
    with Session(engine) as s:
        return s.get(ChatIdentity, identity_id).window_pushes  # type: ignore[union-attr]


async def send_with(sender: WeChatPush | WeComPush, *items: OutboxItem) -> list[SendResult]:
    try:
        return [await sender.send(i) for i in items]
    finally:
        await sender.close()


def run(sender: WeChatPush | WeComPush, *items: OutboxItem) -> list[SendResult]:
    """Each item through `sender` in turn, then the sender closed; the results."""
    return asyncio.run(send_with(sender, *items))
