"""Pushes to Telegram: one Bot API `sendMessage` call per outbox row, outcome mapped for the worker.

Plain httpx rather than python-telegram-bot's `Bot` here: the worker owns ceilings and retries
(PTB's limiter pauses everything on one RetryAfter and skips the per-chat limit, DESIGN §5), and a
broadcast at 1,000 messages/s wants the lightest call we can make.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx

from bot.senders import OutboxItem, SendResult
from messages.render import fit

MAX_CHARS = 4096
MAX_CAPTION = 1024


class TelegramPush:
    platform = "telegram"

    def __init__(self, token: str, base_url: str, timeout: float = 10.0, connections: int = 64) -> None:
        self.url = f"{base_url.rstrip('/')}{token}/" if base_url.endswith("/bot") else f"{base_url}{token}/"
        limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
        self.client = httpx.AsyncClient(timeout=timeout, limits=limits, trust_env=False)

    async def send(self, item: OutboxItem) -> SendResult:
        if item.payload.get("image"):
            return await self._photo(item)
        payload = item.payload
        body: dict[str, Any] = {"chat_id": item.chat_ref, "text": fit(payload.get("text", ""), max_chars=MAX_CHARS)}
        if payload.get("buttons"):
            body["reply_markup"] = json.dumps({"inline_keyboard": [[{"text": label, "callback_data": data}]
                                                                   for label, data in payload["buttons"]]},
                                              ensure_ascii=False)
        try:
            response = await self.client.post(self.url + "sendMessage", data=body)
        except httpx.TimeoutException:
            return SendResult("retry", error="timeout")
        except httpx.HTTPError as exc:
            return SendResult("retry", error=f"network: {type(exc).__name__}")
        return self.outcome(response)

    async def _photo(self, item: OutboxItem) -> SendResult:
        """A recognition image as `sendPhoto` (multipart upload), with its caption."""
        path = Path(item.payload["image"])
        try:
            data = path.read_bytes()
        except OSError as exc:
            return SendResult("failed", error=f"image: {exc.strerror}")
        body = {"chat_id": item.chat_ref, "caption": fit(item.payload.get("caption", ""), max_chars=MAX_CAPTION)}
        try:
            response = await self.client.post(self.url + "sendPhoto", data=body,
                                              files={"photo": (path.name, data, "image/png")})
        except httpx.TimeoutException:
            return SendResult("retry", error="timeout")
        except httpx.HTTPError as exc:
            return SendResult("retry", error=f"network: {type(exc).__name__}")
        return self.outcome(response)

    @staticmethod
    def outcome(response: httpx.Response) -> SendResult:
        try:
            data = response.json()
        except ValueError:
            data = {}
        if response.status_code == 200 and data.get("ok"):
            return SendResult("sent")
        description = str(data.get("description") or response.reason_phrase)[:200]
        code = response.status_code
        if code == 429:
            retry_after = float((data.get("parameters") or {}).get("retry_after") or 1)
            return SendResult("retry", error="429 " + description, retry_after=retry_after)
        if code == 403:
            return SendResult("blocked", error="403 " + description)
        if code >= 500:
            return SendResult("retry", error=f"{code} {description}")
        return SendResult("failed", error=f"{code} {description}")

    async def close(self) -> None:
        await self.client.aclose()
