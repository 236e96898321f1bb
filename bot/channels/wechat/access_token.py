"""WeChat / WeCom API calls with one access token shared by every process (DESIGN §5).

An access token lives 7200 s, fetching a new one invalidates the old one a few minutes later,
and fetches are counted (2000 a day). So processes must not each keep their own: the token
lives in the `AccessToken` table (app key `wechat:<appid>` or `wecom:<corpid>:<agentid>`) and
is refreshed `MARGIN` seconds before it expires.

Only one process fetches at a time. The refresher claims the row with one conditional UPDATE
that moves `fetched_at` into the future (`fetched_at > now` means "a refresh is in progress,
leased until then"); everybody else waits for the new token to appear. A crashed refresher's
lease simply runs out. When the platform rejects a token (40001, 40014, 42001), the caller
asks again naming the bad token: if another process already replaced it, that one is used,
otherwise it is refreshed — once — and the call is retried once.

Plain httpx rather than wechatpy's clients: those are synchronous (requests), keep their token
in their own session store, and would need a thread per push.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import httpx
from sqlalchemy import Engine

from models import access_tokens
from models.values import as_utc, utcnow

if TYPE_CHECKING:
    from bot.settings import Settings

log = logging.getLogger("mianzi.wechat.api")

MARGIN = timedelta(seconds=60)
LEASE = timedelta(seconds=15)
TOKEN_ERRORS = (40001, 40014, 42001)  # invalid credential, invalid token, expired token


class ApiError(Exception):
    """An error answer from the platform (`errcode`, `errmsg`), or an HTTP failure (errcode None)."""

    def __init__(self, errcode: int | None, errmsg: str, status: int = 200) -> None:
        super().__init__(f"{errcode} {errmsg}")
        self.errcode = errcode
        self.errmsg = errmsg
        self.status = status


class TokenStore:
    """The row of one app in the `AccessToken` table (`models.access_tokens`; blocking: call it in a
    worker thread)."""

    def __init__(self, engine: Engine, app: str) -> None:
        self.engine = engine
        self.app = app

    def valid(self, stale: str | None = None) -> tuple[str, datetime] | None:
        """The stored token if it still has more than `MARGIN` to live and is not `stale`."""
        row = access_tokens.stored(self.engine, app=self.app)
        if row is None or not row[0] or row[0] == stale:
            return None
        expires = as_utc(row[1])
        return (row[0], expires) if expires - MARGIN > utcnow() else None

    def claim(self, stale: str | None = None) -> bool:
        """Take the refresh lease if nobody holds it and the token still needs a refresh."""
        now = utcnow()
        return access_tokens.take_lease(self.engine, app=self.app, now=now, until=now + LEASE,
                                        expiring_by=now + MARGIN, stale=stale)

    def save(self, token: str, expires_in: int) -> datetime:
        now = utcnow()
        expires = now + timedelta(seconds=expires_in)
        access_tokens.save(self.engine, app=self.app, token=token, expires_at=expires, fetched_at=now)
        return expires

    def release(self) -> None:
        """Give the lease back after a failed fetch, so the next caller may try at once."""
        access_tokens.end_lease(self.engine, app=self.app, now=utcnow())


class WeixinApi:
    """POST JSON to `<base_url><path>?access_token=…`, with the shared token and one refresh on rejection.

    `token_path` / `token_params` fetch a token: `token` with `grant_type, appid, secret` for the
    Official Account, `gettoken` with `corpid, corpsecret` for WeCom.
    """

    def __init__(self, engine: Engine, app: str, base_url: str, token_path: str, token_params: dict[str, str],
                 *, timeout: float = 10.0, connections: int = 32, wait: float = 20.0) -> None:
        self.store = TokenStore(engine, app)
        self.app = app
        self.base_url = base_url if base_url.endswith("/") else base_url + "/"
        self.token_path = token_path
        self.token_params = token_params
        self.wait = wait
        limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
        self.http = httpx.AsyncClient(timeout=timeout, limits=limits)
        self._memo: tuple[str, datetime] | None = None
        self._lock = asyncio.Lock()

    async def token(self, stale: str | None = None) -> str:
        """A token with more than a minute to live, other than `stale`; fetched only when needed."""
        memo = self._memo
        if memo is not None and memo[0] != stale and memo[1] - MARGIN > utcnow():
            return memo[0]
        async with self._lock:  # one waiter per process; processes coordinate through the table
            deadline = time.monotonic() + self.wait
            while True:
                found = await asyncio.to_thread(self.store.valid, stale)
                if found is not None:
                    self._memo = found
                    return found[0]
                if await asyncio.to_thread(self.store.claim, stale):
                    return await self._fetch()
                if time.monotonic() > deadline:
                    raise ApiError(None, f"no access token for {self.app} within {self.wait}s")
                await asyncio.sleep(0.05)

    async def _fetch(self) -> str:
        try:
            response = await self.http.get(self.base_url + self.token_path, params=self.token_params)
            data = _json(response)
            token, expires_in = data.get("access_token"), data.get("expires_in")
            if response.status_code != 200 or not token:
                raise ApiError(data.get("errcode"), str(data.get("errmsg") or "no access_token"),
                               response.status_code)
        except BaseException:
            await asyncio.to_thread(self.store.release)
            raise
        expires = await asyncio.to_thread(self.store.save, str(token), int(expires_in or 7200))
        self._memo = (str(token), expires)
        log.info("fetched a new access token for %s (valid %ss)", self.app, expires_in)
        return str(token)

    async def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """The platform's JSON answer (`errcode` 0 on success); `ApiError` for HTTP failures.

        Transport errors (httpx.HTTPError) are left to the caller, which knows whether to retry.
        """
        # WeChat wants UTF-8 text in the JSON, not \u escapes (wechatpy sends it the same way).
        payload = json.dumps(body, ensure_ascii=False).encode("utf-8")
        return await self._with_token(path, {}, {"content": payload,
                                                 "headers": {"Content-Type": "application/json; charset=utf-8"}})

    async def upload(self, path: str, field: str, filename: str, data: bytes, content_type: str,
                     params: dict[str, str] | None = None) -> dict[str, Any]:
        """A multipart/form-data upload of one file as `field` (e.g. `media/upload?type=image`, field `media`).

        Same answers, errors and token refresh as `post`.
        """
        return await self._with_token(path, params or {}, {"files": {field: (filename, data, content_type)}})

    async def _with_token(self, path: str, params: dict[str, str], request: dict[str, Any]) -> dict[str, Any]:
        token = await self.token()
        data = await self._post(path, params, request, token)
        if data.get("errcode") in TOKEN_ERRORS:
            log.info("%s rejected the access token (%s); refreshing once", self.app, data.get("errcode"))
            self._memo = None
            data = await self._post(path, params, request, await self.token(stale=token))
        return data

    async def _post(self, path: str, params: dict[str, str], request: dict[str, Any], token: str) -> dict[str, Any]:
        response = await self.http.post(self.base_url + path, params={**params, "access_token": token}, **request)
        data = _json(response)
        if response.status_code != 200:
            raise ApiError(data.get("errcode"), str(data.get("errmsg") or response.reason_phrase),
                           response.status_code)
        data.setdefault("errcode", 0)
        return data

    async def close(self) -> None:
        await self.http.aclose()


def official_account_api(settings: Settings, engine: Engine, **api_options: Any) -> WeixinApi:
    """The Official Account's API (needs `MIANZI_WECHAT_APP_ID` and `MIANZI_WECHAT_APP_SECRET`)."""
    return WeixinApi(engine, f"wechat:{settings.wechat_app_id}", settings.wechat_api_url, "token",
                     {"grant_type": "client_credential", "appid": settings.wechat_app_id or "",
                      "secret": settings.wechat_app_secret or ""}, **api_options)


def wecom_api(settings: Settings, engine: Engine, **api_options: Any) -> WeixinApi:
    """The WeCom app's API (needs `MIANZI_WECOM_CORP_ID`, `_SECRET`, `_AGENT_ID`): the pushes and the
    dealer page's OAuth share its token."""
    return WeixinApi(engine, f"wecom:{settings.wecom_corp_id}:{settings.wecom_agent_id}", settings.wecom_api_url,
                     "gettoken", {"corpid": settings.wecom_corp_id or "", "corpsecret": settings.wecom_secret or ""},
                     **api_options)


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        data = response.json()
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}
