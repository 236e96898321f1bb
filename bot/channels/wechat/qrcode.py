"""The Official Account's parametric QR codes, one per invite (`mianzi partners invite`).

`qrcode/create` with `QR_STR_SCENE` and `scene_str` = the invite code: a follow by scanning it
arrives as `subscribe` with `EventKey` `qrscene_<code>`, a scan by a follower as `SCAN` with the
bare code, and both bind (`bot/channels/wechat/inbound.py`, `plan`). Temporary codes live at most
30 days, so a code's `expire_seconds` is what is left of its invite, capped there. The image is
downloaded from `showqrcode?ticket=…` (`MIANZI_WECHAT_QRCODE_URL`), which needs no token.

The calls share the access token of every other WeChat call (`access_token.WeixinApi`) and run a
few at a time. A code that fails keeps its reason; the invites are issued either way.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import httpx
from sqlalchemy import Engine

from bot.channels.wechat.access_token import ApiError, official_account_api
from bot.settings import Settings
from models.values import as_utc

MAX_EXPIRE_SECONDS = 30 * 24 * 3600  # 2,592,000: WeChat's ceiling for temporary QR codes
IMAGE_MAGIC = (b"\x89PNG", b"\xff\xd8\xff")  # PNG or JPEG: anything else (an HTML error page) is a failure


@dataclass(frozen=True)
class WechatQr:
    """A created QR code: its ticket, the URL it encodes, where its image is, and the image (PNG or JPEG)."""

    scene: str
    ticket: str
    url: str
    image_url: str
    expire_seconds: int
    png: bytes | None = None


@dataclass(frozen=True)
class QrFailed:
    """Why no QR code was made for this scene (the platform's `errcode errmsg`, or the HTTP failure)."""

    scene: str
    reason: str


def configured(settings: Settings) -> bool:
    """Whether the Official Account is set up (its app id and secret)."""
    return bool(settings.wechat_app_id and settings.wechat_app_secret)


def expire_seconds(expires_at: datetime, now: datetime) -> int:
    """What is left of an invite, in whole seconds, within WeChat's 30 days (at least a minute)."""
    left = int((as_utc(expires_at) - as_utc(now)).total_seconds())
    return max(60, min(MAX_EXPIRE_SECONDS, left))


def create_codes(settings: Settings, engine: Engine, scenes: Sequence[tuple[str, int]], *, download: bool,
                 concurrency: int = 8) -> dict[str, WechatQr | QrFailed]:
    """One temporary QR code per `(scene_str, expire_seconds)`, with its PNG when `download`."""
    return asyncio.run(_create_all(settings, engine, scenes, download, concurrency))


async def _create_all(settings: Settings, engine: Engine, scenes: Sequence[tuple[str, int]], download: bool,
                      concurrency: int) -> dict[str, WechatQr | QrFailed]:
    api = official_account_api(settings, engine, connections=concurrency)
    gate = asyncio.Semaphore(concurrency)

    async def one(scene: str, seconds: int) -> WechatQr | QrFailed:
        async with gate:
            try:
                data = await api.post("qrcode/create", {"expire_seconds": seconds, "action_name": "QR_STR_SCENE",
                                                        "action_info": {"scene": {"scene_str": scene}}})
                if data.get("errcode") or not data.get("ticket"):
                    return QrFailed(scene, f"{data.get('errcode')} {data.get('errmsg') or 'no ticket'}")
                ticket = str(data["ticket"])
                image = httpx.URL(settings.wechat_qrcode_url, params={"ticket": ticket})
                png = None
                if download:
                    response = await api.http.get(image)
                    if response.status_code != 200 or not response.content.startswith(IMAGE_MAGIC):
                        return QrFailed(scene, f"HTTP {response.status_code} showqrcode")
                    png = response.content
                return WechatQr(scene, ticket, str(data.get("url") or ""), str(image),
                                int(data.get("expire_seconds") or seconds), png)
            except ApiError as exc:
                return QrFailed(scene, f"{exc.errcode} {exc.errmsg}")
            except httpx.HTTPError as exc:
                return QrFailed(scene, f"{type(exc).__name__} {exc}".strip())

    try:
        results = await asyncio.gather(*(one(scene, seconds) for scene, seconds in scenes))
    finally:
        await api.close()
    return {r.scene: r for r in results}
