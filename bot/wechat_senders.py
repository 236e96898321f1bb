"""Pushes to WeChat Official Account users and WeCom members: one API call per outbox row.

Official Account (DESIGN §5: pushes are scarce there):
- a **customer-service text** (`message/custom/send`) only while the user's window is open:
  within 48 hours of their last message (`ChatIdentity.last_seen_at`) and fewer than 5 pushes
  since it (`window_pushes`, counted here on success and reset by the core at each message).
  A late passive reply (payload `reply_to`) to someone not bound yet counts as in the window:
  they wrote seconds ago.
- outside the window, the **template message** `MIANZI_WECHAT_TEMPLATE_ID` when configured,
  else `undeliverable` with `wechat_window_closed` (shown in the delivery report). The template
  we expect is a plain notice (e.g. the industry template "通知"/"消息提醒") with two keywords:
  `{{keyword1.DATA}}` the message (cut to 200 characters) and `{{keyword2.DATA}}` the time in the
  program's time zone. No `first`/`remark`: WeChat stopped showing them in 2023.
- `45015` (window closed) or `45047` (window quota used) from WeChat closes the window on our
  side too: with a template configured the row is retried (and then goes out as a template),
  else it is undeliverable.
- an account that unfollowed (`active = False`) is `blocked` without a call; `43004` likewise.

WeCom: `message/send` text to a member (`touser`), `appchat/send` to a group chat
(`item.is_group`, `chat_ref` the chatid). A member who left or is outside the app's visible
range (`81013`, `60111`, or listed in `invaliduser`) is `blocked`.

Texts are cut to 2048 bytes. The worker owns ceilings and retries: `-1` (busy), 5xx and network
errors are `retry`; frequency limits are `retry` with `retry_after`; anything else `failed`.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
from sqlalchemy import Engine, select, update
from sqlmodel import Session

from bot.access_token import ApiError, WeixinApi
from bot.senders import OutboxItem, SendResult
from bot.settings import Settings
from messages.render import fit, local_time
from models.tables import ChatIdentity
from models.values import as_utc, utcnow

TEXT_BYTES = 2048
TEMPLATE_CHARS = 200
WINDOW = timedelta(hours=48)
WINDOW_PUSHES = 5
WINDOW_CLOSED = "wechat_window_closed"

RATE_LIMITED = {45009: 600.0, 45011: 1.0, 45033: 1.0}  # daily quota, per-minute quota, concurrency
WECHAT_BLOCKED = {43004: "wechat_unsubscribed", 40003: "wechat_invalid_openid", 43101: "wechat_user_refused"}
WECHAT_WINDOW = {45015: WINDOW_CLOSED, 45047: "wechat_window_quota"}
WECOM_BLOCKED = {81013: "wecom_invalid_user", 60111: "wecom_user_not_found", 86003: "wecom_chat_not_found"}


def common_outcome(data: dict[str, Any], prefix: str) -> SendResult | None:
    """What every answer means regardless of the platform; None when the caller must decide."""
    code = data.get("errcode", 0)
    if code == 0:
        return SendResult("sent")
    message = f"{prefix}_{code}: {str(data.get('errmsg', ''))[:200]}"
    if code == -1:
        return SendResult("retry", error=message)
    if code in RATE_LIMITED:
        return SendResult("retry", error=message, retry_after=RATE_LIMITED[code])
    return None


async def guarded(prefix: str, call: Any) -> dict[str, Any] | SendResult:
    """Run one API call; transport problems and HTTP failures become a `SendResult`."""
    try:
        return await call
    except httpx.TimeoutException:
        return SendResult("retry", error=f"{prefix}: timeout")
    except httpx.HTTPError as exc:
        return SendResult("retry", error=f"{prefix}: network {type(exc).__name__}")
    except ApiError as exc:
        # An HTTP 4xx is our request's fault; 5xx, 429 and a refused token fetch (bad secret, server IP
        # not whitelisted: fixable in the console) are worth the worker's few retries.
        outcome = "failed" if 400 <= exc.status < 500 and exc.status != 429 else "retry"
        return SendResult(outcome, error=f"{prefix}: {exc}"[:300])


@dataclass(frozen=True)
class _Window:
    identity_id: int | None
    active: bool
    open: bool


class WeChatPush:
    """Sender for the Official Account (`platform = "wechat"`)."""

    platform = "wechat"

    def __init__(self, settings: Settings, engine: Engine, **api_options: Any) -> None:
        if not settings.wechat_app_id or not settings.wechat_app_secret:
            raise ValueError("MIANZI_WECHAT_APP_ID and MIANZI_WECHAT_APP_SECRET are required to push on WeChat")
        self.engine = engine
        self.template_id = settings.wechat_template_id
        self.timezone = settings.timezone
        self.api = WeixinApi(engine, f"wechat:{settings.wechat_app_id}", settings.wechat_api_url, "token",
                             {"grant_type": "client_credential", "appid": settings.wechat_app_id,
                              "secret": settings.wechat_app_secret}, **api_options)

    async def send(self, item: OutboxItem) -> SendResult:
        text = fit(str(item.payload.get("text") or ""), max_bytes=TEXT_BYTES)
        if not text.strip():
            return SendResult("failed", error="empty_text")
        if item.is_group:
            return SendResult("failed", error="wechat_no_group_chats")
        window = await asyncio.to_thread(self._window, item)
        if not window.active:
            return SendResult("blocked", error="wechat_unsubscribed")
        if window.open:
            return await self._custom(item, text, window)
        if self.template_id:
            return await self._template(item, text)
        return SendResult("undeliverable", error=WINDOW_CLOSED)

    async def _custom(self, item: OutboxItem, text: str, window: _Window) -> SendResult:
        body = {"touser": item.chat_ref, "msgtype": "text", "text": {"content": text}}
        data = await guarded("wechat", self.api.post("message/custom/send", body))
        if isinstance(data, SendResult):
            return data
        result = self._outcome(data)
        if result.outcome == "sent" and window.identity_id is not None:
            await asyncio.to_thread(self._count, window.identity_id)
        elif data.get("errcode") in WECHAT_WINDOW:
            reason = WECHAT_WINDOW[data["errcode"]]
            if self.template_id and window.identity_id is not None:
                await asyncio.to_thread(self._close, window.identity_id)
                return SendResult("retry", error=reason)  # the next attempt goes out as a template
            return SendResult("undeliverable", error=reason)
        return result

    async def _template(self, item: OutboxItem, text: str) -> SendResult:
        body = {"touser": item.chat_ref, "template_id": self.template_id,
                "data": {"keyword1": {"value": fit(text, max_chars=TEMPLATE_CHARS)},
                         "keyword2": {"value": local_time(utcnow(), self.timezone)}}}
        data = await guarded("wechat", self.api.post("message/template/send", body))
        return data if isinstance(data, SendResult) else self._outcome(data)

    @staticmethod
    def _outcome(data: dict[str, Any]) -> SendResult:
        result = common_outcome(data, "wechat")
        if result is not None:
            return result
        code = data.get("errcode")
        if code in WECHAT_BLOCKED:
            return SendResult("blocked", error=WECHAT_BLOCKED[code])
        if code in WECHAT_WINDOW:
            return SendResult("undeliverable", error=WECHAT_WINDOW[code])
        return SendResult("failed", error=f"wechat_{code}: {str(data.get('errmsg', ''))[:200]}")

    def _identity(self, item: OutboxItem) -> ChatIdentity | None:
        with Session(self.engine) as session:
            if item.identity_id is not None:
                return session.get(ChatIdentity, item.identity_id)
            return session.execute(select(ChatIdentity).where(
                ChatIdentity.platform == self.platform, ChatIdentity.user_ref == item.chat_ref)).scalars().first()

    def _window(self, item: OutboxItem) -> _Window:
        identity = self._identity(item)
        if identity is None:
            return _Window(None, True, bool(item.payload.get("reply_to")))
        seen = identity.last_seen_at
        is_open = (seen is not None and as_utc(seen) > utcnow() - WINDOW and identity.window_pushes < WINDOW_PUSHES)
        return _Window(identity.id, identity.active, is_open)

    def _count(self, identity_id: int) -> None:
        with self.engine.begin() as conn:
            conn.execute(update(ChatIdentity).where(ChatIdentity.id == identity_id)
                         .values(window_pushes=ChatIdentity.window_pushes + 1))

    def _close(self, identity_id: int) -> None:
        with self.engine.begin() as conn:
            conn.execute(update(ChatIdentity).where(ChatIdentity.id == identity_id)
                         .values(window_pushes=WINDOW_PUSHES))

    async def close(self) -> None:
        await self.api.close()


class WeComPush:
    """Sender for the WeCom app (`platform = "wecom"`)."""

    platform = "wecom"

    def __init__(self, settings: Settings, engine: Engine, **api_options: Any) -> None:
        if not settings.wecom_corp_id or not settings.wecom_secret or not settings.wecom_agent_id:
            raise ValueError("MIANZI_WECOM_CORP_ID, _SECRET and _AGENT_ID are required to push on WeCom")
        self.agent_id = int(settings.wecom_agent_id)
        self.api = WeixinApi(engine, f"wecom:{settings.wecom_corp_id}:{settings.wecom_agent_id}",
                             settings.wecom_api_url, "gettoken",
                             {"corpid": settings.wecom_corp_id, "corpsecret": settings.wecom_secret}, **api_options)

    async def send(self, item: OutboxItem) -> SendResult:
        text = fit(str(item.payload.get("text") or ""), max_bytes=TEXT_BYTES)
        if not text.strip():
            return SendResult("failed", error="empty_text")
        if item.is_group:
            path, body = "appchat/send", {"chatid": item.chat_ref, "msgtype": "text", "text": {"content": text}}
        else:
            path, body = "message/send", {"touser": item.chat_ref, "msgtype": "text", "agentid": self.agent_id,
                                          "text": {"content": text}}
        data = await guarded("wecom", self.api.post(path, body))
        if isinstance(data, SendResult):
            return data
        result = common_outcome(data, "wecom")
        if result is not None and result.outcome == "sent":
            invalid = str(data.get("invaliduser") or "").split("|")
            if not item.is_group and item.chat_ref in invalid:  # accepted, but not for this member
                return SendResult("blocked", error="wecom_invalid_user")
            return result
        if result is not None:
            return result
        code = data.get("errcode")
        if code in WECOM_BLOCKED:
            return SendResult("blocked", error=WECOM_BLOCKED[code])
        return SendResult("failed", error=f"wecom_{code}: {str(data.get('errmsg', ''))[:200]}")

    async def close(self) -> None:
        await self.api.close()
