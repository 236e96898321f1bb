"""Pushes to WeChat Official Account users and WeCom members: one API call per outbox row (on WeCom,
one per batch of rows with the same content).

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

WeCom: `message/send` to members (`touser`), `appchat/send` to a group chat (`item.is_group`,
`chat_ref` the chatid). Rows of one content to members go in one call, up to 1000 of them
(`touser` = UserIDs joined with `|`; the delivery worker groups them, see `bot.delivery.worker`). WeCom
sends a partly valid call to the valid members and lists the others in the answer, lowercased:
a member who left or is outside the app's visible range (`invaliduser`; `81013` when every member
is, `60111` for a lone one) is `blocked` (`wecom_invalid_user`, shown in the delivery report); a
member the app has no licence for (`unlicenseduser`) is `undeliverable` (`wecom_unlicensed_user`):
their account stays, a licence may come. Everything else about the answer (token refresh, `-1`,
frequency limits, 5xx and timeouts) is the same for every row of the call.

Recognition images (payload `image`: a file path, and `caption`) are uploaded as temporary media
(`media/upload?type=image`, multipart field `media`; kept 3 days by the platform, so a media id is
reused for the same bytes for `MEDIA_REUSE` by this sender: a board goes to several groups with one
upload), then sent as an image message with the returned `media_id`. An unreadable or missing
file is `failed` (`image_unreadable: …`) without any call. On the Official Account an image follows
the text rules — customer-service message inside the window, counted against its quota — except
that no template can carry an image: outside the window it is `undeliverable` (`wechat_window_closed`)
even with a template configured. The caption goes as a separate text after the image, best effort
(its failure does not make the delivered image a failure or a retry, which would send it twice):
on WeCom always, on the Official Account only if the window still has a push to spare after the
image — otherwise it is skipped rather than use the user's last push on a caption.

Texts are cut to 2048 bytes. The worker owns ceilings and retries: `-1` (busy), 5xx and network
errors are `retry`; frequency limits are `retry` with `retry_after`; anything else `failed`.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import mimetypes
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import Engine
from sqlmodel import Session

from bot.channels.base import OutboxItem, Outcome, SendResult
from bot.channels.wechat.access_token import ApiError, WeixinApi, official_account_api, wecom_api
from bot.channels.wechat.limits import fit_template, fit_text
from bot.settings import Settings
from messages.render import local_time
from models import identities
from models.tables import ChatIdentity
from models.values import as_utc, utcnow

log = logging.getLogger("mianzi.wechat.push")

IMAGE_BYTES = 10 * 1024 * 1024  # both platforms' limit for an image as temporary media
MEDIA_REUSE = 2 * 24 * 3600.0  # seconds a media id is reused; the platform keeps temporary media 3 days
INVALID_MEDIA = 40007
WINDOW = timedelta(hours=48)
WINDOW_PUSHES = 5
WINDOW_CLOSED = "wechat_window_closed"

RATE_LIMITED = {45009: 600.0, 45011: 1.0, 45033: 1.0}  # daily quota, per-minute quota, concurrency
WECHAT_BLOCKED = {43004: "wechat_unsubscribed", 40003: "wechat_invalid_openid", 43101: "wechat_user_refused"}
WECHAT_WINDOW = {45015: WINDOW_CLOSED, 45047: "wechat_window_quota"}
WECOM_ALL_INVALID = 81013
WECOM_BLOCKED = {WECOM_ALL_INVALID: "wecom_invalid_user", 60111: "wecom_user_not_found", 86003: "wecom_chat_not_found"}
WECOM_UNLICENSED = "wecom_unlicensed_user"
WECOM_BATCH = 1000  # members one `message/send` may name


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
        answer: dict[str, Any] = await call
        return answer
    except httpx.TimeoutException:
        return SendResult("retry", error=f"{prefix}: timeout")
    except httpx.HTTPError as exc:
        return SendResult("retry", error=f"{prefix}: network {type(exc).__name__}")
    except ApiError as exc:
        # An HTTP 4xx is our request's fault; 5xx, 429 and a refused token fetch (bad secret, server IP
        # not whitelisted: fixable in the console) are worth the worker's few retries.
        outcome: Outcome = "failed" if 400 <= exc.status < 500 and exc.status != 429 else "retry"
        return SendResult(outcome, error=f"{prefix}: {exc}"[:300])


async def read_image(item: OutboxItem) -> tuple[Path, bytes] | SendResult:
    """The image file of an outbox row, or why it cannot be sent (`failed`: retrying will not help)."""
    path = Path(str(item.payload["image"]))
    try:
        data = await asyncio.to_thread(path.read_bytes)
    except OSError as exc:
        return SendResult("failed", error=f"image_unreadable: {exc.strerror or type(exc).__name__}: {path}"[:300])
    if not data:
        return SendResult("failed", error=f"image_empty: {path}"[:300])
    if len(data) > IMAGE_BYTES:
        return SendResult("failed", error=f"image_too_large: {len(data)} bytes: {path}"[:300])
    return path, data


class MediaUploads:
    """Temporary media uploaded by one sender, by content, while the platform still keeps it."""

    def __init__(self, api: WeixinApi, prefix: str) -> None:
        self.api = api
        self.prefix = prefix
        self._ids: dict[str, tuple[str, float]] = {}

    async def media_id(self, path: Path, data: bytes) -> str | SendResult:
        """The `media_id` of the image `data`, uploaded unless it was lately; else the `SendResult` to report."""
        key = hashlib.sha256(data).hexdigest()
        known = self._ids.get(key)
        if known is not None and known[1] > time.monotonic():
            return known[0]
        content_type = mimetypes.guess_type(path.name)[0] or "image/png"
        answer = await guarded(self.prefix, self.api.upload("media/upload", "media", path.name, data, content_type,
                                                            {"type": "image"}))
        if isinstance(answer, SendResult):
            return answer
        result = common_outcome(answer, f"{self.prefix}_upload")
        if result is not None and result.outcome == "sent":
            if not answer.get("media_id"):
                return SendResult("failed", error=f"{self.prefix}_upload: no media_id in the answer")
            self._ids[key] = (str(answer["media_id"]), time.monotonic() + MEDIA_REUSE)
            return str(answer["media_id"])
        if result is not None:
            return result
        return SendResult("failed", error=f"{self.prefix}_upload_{answer.get('errcode')}: "
                                          f"{str(answer.get('errmsg', ''))[:200]}")

    def forget(self, media_id: str) -> None:
        """The platform no longer knows `media_id` (40007): upload again next time."""
        self._ids = {k: v for k, v in self._ids.items() if v[0] != media_id}


def window_open(last_seen_at: datetime | None, pushes: int, at: datetime) -> bool:
    """Whether a customer-service text may reach the user at `at`: within 48 hours of their last
    message, and fewer than 5 pushes since it (else the template, or nothing)."""
    return last_seen_at is not None and as_utc(last_seen_at) > at - WINDOW and pushes < WINDOW_PUSHES


@dataclass(frozen=True)
class _Window:
    identity_id: int | None
    active: bool
    open: bool
    pushes: int = 0


class WeChatPush:
    """Sender for the Official Account (`platform = "wechat"`)."""

    platform = "wechat"

    def __init__(self, settings: Settings, engine: Engine, **api_options: Any) -> None:
        if not settings.sends("wechat"):
            raise ValueError("MIANZI_WECHAT_APP_ID and MIANZI_WECHAT_APP_SECRET are required to push on WeChat")
        self.engine = engine
        self.template_id = settings.wechat_template_id
        self.timezone = settings.timezone
        self.api = official_account_api(settings, engine, **api_options)
        self.media = MediaUploads(self.api, "wechat")

    async def send(self, item: OutboxItem) -> SendResult:
        if item.payload.get("image"):
            return await self._image(item)
        text = fit_text(str(item.payload.get("text") or ""))
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

    async def _image(self, item: OutboxItem) -> SendResult:
        """A recognition image as a customer-service image message; only inside the window (no template
        carries images). Its caption follows as a text if the window keeps a push to spare after the image."""
        if item.is_group:
            return SendResult("failed", error="wechat_no_group_chats")
        image = await read_image(item)
        if isinstance(image, SendResult):
            return image
        window = await asyncio.to_thread(self._window, item)
        if not window.active:
            return SendResult("blocked", error="wechat_unsubscribed")
        if not window.open:
            return SendResult("undeliverable", error=WINDOW_CLOSED)
        media_id = await self.media.media_id(*image)
        if isinstance(media_id, SendResult):
            return media_id
        body = {"touser": item.chat_ref, "msgtype": "image", "image": {"media_id": media_id}}
        data = await guarded("wechat", self.api.post("message/custom/send", body))
        if isinstance(data, SendResult):
            return data
        if data.get("errcode") == INVALID_MEDIA:
            self.media.forget(media_id)
            return SendResult("retry", error=f"wechat_{INVALID_MEDIA}: {str(data.get('errmsg', ''))[:200]}")
        result = self._outcome(data)
        if result.outcome == "sent":
            if window.identity_id is not None:
                await asyncio.to_thread(self._count, window.identity_id)
            if window.pushes + 1 < WINDOW_PUSHES:
                await self._caption(item, window)
        elif data.get("errcode") in WECHAT_WINDOW and self.template_id and window.identity_id is not None:
            await asyncio.to_thread(self._close, window.identity_id)  # later texts go out as templates
        return result

    async def _caption(self, item: OutboxItem, window: _Window) -> None:
        """The caption of a delivered image, best effort: its failure is logged, not reported."""
        text = fit_text(str(item.payload.get("caption") or ""))
        if not text.strip():
            return
        body = {"touser": item.chat_ref, "msgtype": "text", "text": {"content": text}}
        data = await guarded("wechat", self.api.post("message/custom/send", body))
        result = data if isinstance(data, SendResult) else self._outcome(data)
        if result.outcome == "sent" and window.identity_id is not None:
            await asyncio.to_thread(self._count, window.identity_id)
        elif result.outcome != "sent":
            log.warning("caption of outbox row %s not sent: %s", item.id, result.error)

    async def _template(self, item: OutboxItem, text: str) -> SendResult:
        body = {"touser": item.chat_ref, "template_id": self.template_id,
                "data": {"keyword1": {"value": fit_template(text)},
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
            return identities.push_identity(session, identity_id=item.identity_id, platform=self.platform,
                                            user_ref=item.chat_ref)

    def _window(self, item: OutboxItem) -> _Window:
        identity = self._identity(item)
        if identity is None:
            return _Window(None, True, bool(item.payload.get("reply_to")))
        is_open = window_open(identity.last_seen_at, identity.window_pushes, utcnow())
        return _Window(identity.id, identity.active, is_open, identity.window_pushes)

    def _count(self, identity_id: int) -> None:
        with self.engine.begin() as conn:
            identities.count_window_push(conn, identity_id=identity_id)

    def _close(self, identity_id: int) -> None:
        with self.engine.begin() as conn:
            identities.set_window_pushes(conn, identity_id=identity_id, pushes=WINDOW_PUSHES)

    async def close(self) -> None:
        await self.api.close()


class WeComPush:
    """Sender for the WeCom app (`platform = "wecom"`); a `BatchSender`: one `message/send` names up to
    `batch_size` members when they get the same content."""

    platform = "wecom"
    batch_size = WECOM_BATCH

    def __init__(self, settings: Settings, engine: Engine, **api_options: Any) -> None:
        if not settings.sends("wecom"):
            raise ValueError("MIANZI_WECOM_CORP_ID, _SECRET and _AGENT_ID are required to push on WeCom")
        self.agent_id = int(settings.wecom_agent_id or 0)  # set: sends() checked it
        self.api = wecom_api(settings, engine, **api_options)
        self.media = MediaUploads(self.api, "wecom")

    def batch_key(self, item: OutboxItem) -> str | None:
        """Rows to members with the same payload share a call; group chats (`appchat/send`) go one by one."""
        if item.is_group:
            return None
        return json.dumps(item.payload, sort_keys=True, ensure_ascii=False, default=str)

    async def send(self, item: OutboxItem) -> SendResult:
        return (await self.send_batch([item]))[0]

    async def send_batch(self, items: Sequence[OutboxItem]) -> list[SendResult]:
        """Rows of one content (`batch_key`) to distinct members — or one row to a group chat — in one call."""
        payload = items[0].payload
        if payload.get("image"):
            return await self._image(items)
        text = fit_text(str(payload.get("text") or ""))
        if not text.strip():
            return [SendResult("failed", error="empty_text")] * len(items)
        return await self._message(items, {"msgtype": "text", "text": {"content": text}})

    async def _image(self, items: Sequence[OutboxItem]) -> list[SendResult]:
        """A recognition image as an image message, then its caption as a text to those who got it (best effort)."""
        image = await read_image(items[0])
        if isinstance(image, SendResult):
            return [image] * len(items)
        media_id = await self.media.media_id(*image)
        if isinstance(media_id, SendResult):
            return [media_id] * len(items)
        results = await self._message(items, {"msgtype": "image", "image": {"media_id": media_id}})
        error = results[0].error
        if error and error.startswith(f"wecom_{INVALID_MEDIA}:"):
            self.media.forget(media_id)
            return [SendResult("retry", error=error)] * len(items)
        caption = fit_text(str(items[0].payload.get("caption") or ""))
        got = [item for item, result in zip(items, results, strict=True) if result.outcome == "sent"]
        if got and caption.strip():
            for item, text in zip(got, await self._message(got, {"msgtype": "text", "text": {"content": caption}}),
                                  strict=True):
                if text.outcome != "sent":
                    log.warning("caption of outbox row %s not sent: %s", item.id, text.error)
        return results

    async def _message(self, items: Sequence[OutboxItem], message: dict[str, Any]) -> list[SendResult]:
        """One message (`msgtype` and its content) to the members of `items` (`touser` joined with `|`), or
        to the group chat of a single group row; a result per row."""
        if items[0].is_group:
            path, body = "appchat/send", {"chatid": items[0].chat_ref, **message}
        else:
            path, body = "message/send", {"touser": "|".join(i.chat_ref for i in items),
                                          "msgtype": message["msgtype"], "agentid": self.agent_id, **message}
        data = await guarded("wecom", self.api.post(path, body))
        if isinstance(data, SendResult):
            return [data] * len(items)
        code = data.get("errcode")
        if code in (0, WECOM_ALL_INVALID) and not items[0].is_group:
            # Accepted for the members it does not list (WeCom lowercases the ids it lists); 81013: none.
            invalid, unlicensed = _listed(data.get("invaliduser")), _listed(data.get("unlicenseduser"))
            return [self._member(item.chat_ref.lower(), code, invalid, unlicensed) for item in items]
        result = common_outcome(data, "wecom")
        if result is None:
            message_text = f"wecom_{code}: {str(data.get('errmsg', ''))[:200]}"
            # A code that names no member blocks the one member of a single row; for a batch it cannot say whom.
            if code in WECOM_BLOCKED and len(items) == 1:
                result = SendResult("blocked", error=WECOM_BLOCKED[code])
            else:
                result = SendResult("failed", error=message_text)
        return [result] * len(items)

    @staticmethod
    def _member(user: str, code: int, invalid: set[str], unlicensed: set[str]) -> SendResult:
        if user in unlicensed:
            return SendResult("undeliverable", error=WECOM_UNLICENSED)
        if code == WECOM_ALL_INVALID or user in invalid:
            return SendResult("blocked", error=WECOM_BLOCKED[WECOM_ALL_INVALID])
        return SendResult("sent")

    async def close(self) -> None:
        await self.api.close()


def _listed(ids: Any) -> set[str]:
    """The ids of a WeCom `invaliduser`/`unlicenseduser` field (`a|b|c`), lowercased as WeCom lists them."""
    return {part.strip().lower() for part in str(ids or "").split("|") if part.strip()}
