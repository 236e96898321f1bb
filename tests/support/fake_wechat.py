"""A fake WeChat / WeCom API on 127.0.0.1 (uvicorn in a thread), and helpers to sign callbacks.

The fake answers the calls our senders make — `token` and `gettoken`, `message/custom/send`,
`message/template/send`, `message/send`, `appchat/send` (text or image messages alike), and
`media/upload` (multipart: recorded as `{"type", "field", "filename", "content_type", "data"}`,
answered with a fresh `media_id` `MEDIA-<n>`), `qrcode/create` (a fresh ticket, the URL
`http://weixin.qq.com/q/<ticket>`, kept in `qrcodes`) and `showqrcode?ticket=…` (no token, as on
mp.weixin.qq.com: a real PNG of a QR code of that URL, made by segno; 404 for an unknown ticket), the
web sign-in (`connect/oauth2/authorize`, `sns/oauth2/access_token`, WeCom's `user/getuserinfo`: each
code once, a forged one refused with 40029, a used one with 40163) — records every call (with its time and answer),
counts token fetches, accepts only the tokens it issued and not revoked (else 40001 / 42001 like
the real API), and answers a queued error code (or HTTP status) when a test asks for one.

`message/send` reads `touser` as WeCom does (UserIDs joined with `|`, case-insensitive) and answers
as WeCom does for members a test marked `invalid_users` or `unlicensed_users`: the call goes to the
others and the answer lists them, lowercased (`invaliduser`, `unlicenseduser`); `81013` when no
member is left. `revoke_after` revokes every token once that many `message/send` calls were accepted
(a token expiring in the middle of a run).
"""

from __future__ import annotations

import email.parser
import email.policy
import io
import json
import re
import secrets
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import segno
import uvicorn
import xmltodict
from sqlalchemy import Engine, select
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp

from bot.channels.wechat.callback_xml import cdata, signature
from models.db import session_scope
from models.identities import new_invite
from models.tables import Partner
from tests.support import builders as b
from tests.support.builders import SH
from tests.support.live_app import loopback


@dataclass
class Call:
    path: str
    token: str | None
    body: dict[str, Any]
    at: float = 0.0  # time.monotonic() when it arrived
    answer: dict[str, Any] = field(default_factory=dict)

    @property
    def users(self) -> list[str]:
        """The members a `message/send` named."""
        return str(self.body.get("touser") or "").split("|")


@dataclass
class FakeWeixin:
    base_url: str = ""
    token_fetches: int = 0
    valid: set[str] = field(default_factory=set)
    calls: list[Call] = field(default_factory=list)
    errors: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # path → answers to give first
    http_errors: dict[str, list[int]] = field(default_factory=dict)  # path → HTTP statuses to answer first
    expired_code: int = 42001
    invalid_users: set[str] = field(default_factory=set)
    unlicensed_users: set[str] = field(default_factory=set)
    revoke_after: int | None = None
    qrcodes: dict[str, dict[str, Any]] = field(default_factory=dict)  # ticket → the qrcode/create body
    downloads: list[str] = field(default_factory=list)  # tickets asked of showqrcode
    lock: threading.Lock = field(default_factory=threading.Lock)
    # Web sign-in (OAuth): codes the fake handed out → the OpenID (Official Account) or UserID
    # (WeCom) behind each; a code works once, as at WeChat. `authorize_as` is who `connect/oauth2/
    # authorize` signs in (a browser sent there comes back with a fresh code for them).
    oauth_codes: dict[str, str] = field(default_factory=dict)
    used_codes: set[str] = field(default_factory=set)
    authorize_as: str | None = None
    app_secret: str | None = None  # when set, `sns/oauth2/access_token` wants it

    @property
    def root(self) -> str:
        """The fake's origin (`MIANZI_WECHAT_SNS_URL`; + `/connect/` is `MIANZI_WECHAT_OAUTH_URL`)."""
        return self.base_url.removesuffix("cgi-bin/")

    def issue_code(self, user: str) -> str:
        code = f"CODE-{secrets.token_hex(6)}"
        with self.lock:
            self.oauth_codes[code] = user
        return code

    def _redeem(self, code: str) -> tuple[str | None, dict[str, Any] | None]:
        """The user behind a code, spent now; else the error WeChat answers (invalid, or used)."""
        with self.lock:
            if code in self.used_codes:
                return None, {"errcode": 40163, "errmsg": "code been used"}
            user = self.oauth_codes.pop(code, None)
            if user is None:
                return None, {"errcode": 40029, "errmsg": "invalid code"}
            self.used_codes.add(code)
            return user, None

    def fail_next(self, path: str, errcode: int, errmsg: str = "error", **extra: Any) -> None:
        self.errors.setdefault(path, []).append({"errcode": errcode, "errmsg": errmsg, **extra})

    def fail_http(self, path: str, status: int = 502) -> None:
        self.http_errors.setdefault(path, []).append(status)

    def accepted(self, path: str = "message/send") -> list[Call]:
        """The calls to `path` the fake accepted (errcode 0)."""
        return [c for c in self.sent(path) if c.answer.get("errcode") == 0]

    def _member_answer(self, body: dict[str, Any]) -> dict[str, Any]:
        users = [u for u in str(body.get("touser") or "").split("|") if u]
        invalid = [u.lower() for u in users if u.lower() in {i.lower() for i in self.invalid_users}]
        unlicensed = [u.lower() for u in users if u.lower() in {i.lower() for i in self.unlicensed_users}]
        answer: dict[str, Any] = {"errcode": 0, "errmsg": "ok"}
        if len(invalid) + len(unlicensed) >= len(users):
            answer = {"errcode": 81013, "errmsg": "user & party & tag all invalid"}
        if invalid:
            answer["invaliduser"] = "|".join(invalid)
        if unlicensed:
            answer["unlicenseduser"] = "|".join(unlicensed)
        return answer

    def revoke_tokens(self) -> None:
        self.valid.clear()

    def sent(self, path: str) -> list[Call]:
        return [c for c in self.calls if c.path == path]

    def uploads(self) -> list[Call]:
        return self.sent("media/upload")

    def app(self) -> Starlette:
        async def token(request: Request) -> JSONResponse:
            with self.lock:
                self.token_fetches += 1
                issued = f"TOKEN-{self.token_fetches}"
                self.valid.add(issued)
            body: dict[str, Any] = {"access_token": issued, "expires_in": 7200}
            if request.url.path.endswith("gettoken"):
                body = {"errcode": 0, "errmsg": "ok", **body}
            return JSONResponse(body)

        async def api(request: Request) -> JSONResponse:
            path = request.url.path.removeprefix("/cgi-bin/")
            raw = await request.body()
            content_type = request.headers.get("content-type", "")
            if content_type.startswith("multipart/form-data"):
                body = _multipart(content_type, raw)
                body["type"] = request.query_params.get("type")
            else:
                body = json.loads(raw.decode("utf-8"))
            call = Call(path, request.query_params.get("access_token"), body, at=time.monotonic())
            with self.lock:
                self.calls.append(call)
                statuses = self.http_errors.get(path)
                if statuses:
                    status = statuses.pop(0)
                    call.answer = {"status": status}
                    return PlainTextResponse("<html>server error</html>", status_code=status)
                if call.token not in self.valid:
                    call.answer = {"errcode": self.expired_code, "errmsg": "access_token expired"}
                elif self.errors.get(path):
                    call.answer = self.errors[path].pop(0)
                elif path == "media/upload":  # the Official Account answers without errcode on success
                    call.answer = {"type": body["type"], "media_id": f"MEDIA-{len(self.uploads())}",
                                   "created_at": int(time.time())}
                elif path == "message/send":
                    call.answer = {**self._member_answer(body), "msgid": len(self.calls)}
                elif path == "qrcode/create":  # answered without errcode on success, as WeChat does
                    ticket = f"gQ{len(self.qrcodes) + 1:05d}+/AAE=="  # characters that need quoting in a URL
                    self.qrcodes[ticket] = body
                    call.answer = {"ticket": ticket, "expire_seconds": body.get("expire_seconds"),
                                   "url": f"http://weixin.qq.com/q/{ticket}"}
                else:
                    call.answer = {"errcode": 0, "errmsg": "ok", "msgid": len(self.calls)}
                if path == "message/send" and self.revoke_after is not None and call.answer.get("errcode") == 0 \
                        and len(self.accepted()) >= self.revoke_after:
                    self.revoke_after = None
                    self.revoke_tokens()
                return JSONResponse(call.answer)

        async def showqrcode(request: Request) -> Response:
            ticket = request.query_params.get("ticket", "")
            with self.lock:
                self.downloads.append(ticket)
                known = ticket in self.qrcodes
            if not known:
                return PlainTextResponse("not found", status_code=404)
            png = io.BytesIO()
            segno.make_qr(f"http://weixin.qq.com/q/{ticket}").save(png, kind="png", scale=10, border=4)
            return Response(png.getvalue(), media_type="image/png")

        async def sns_token(request: Request) -> JSONResponse:
            """`sns/oauth2/access_token` (Official Account OAuth): the code's OpenID, once."""
            q = request.query_params
            self.calls.append(Call("sns/oauth2/access_token", None, dict(q), at=time.monotonic()))
            if q.get("grant_type") != "authorization_code" or (self.app_secret and q.get("secret") != self.app_secret):
                return JSONResponse({"errcode": 40125, "errmsg": "invalid appsecret"})
            user, error = self._redeem(q.get("code", ""))
            if error is not None:
                return JSONResponse(error)
            return JSONResponse({"access_token": f"WEB-{secrets.token_hex(4)}", "expires_in": 7200,
                                 "refresh_token": "R", "openid": user, "scope": "snsapi_base"})

        async def getuserinfo(request: Request) -> JSONResponse:
            """WeCom `user/getuserinfo`: the code's UserId, once; the app's access token required."""
            q = request.query_params
            self.calls.append(Call("user/getuserinfo", q.get("access_token"), dict(q), at=time.monotonic()))
            if q.get("access_token") not in self.valid:
                return JSONResponse({"errcode": self.expired_code, "errmsg": "access_token expired"})
            user, error = self._redeem(q.get("code", ""))
            if error is not None:
                return JSONResponse(error)
            return JSONResponse({"errcode": 0, "errmsg": "ok", "UserId": user, "DeviceId": ""})

        async def authorize(request: Request) -> Response:
            """`connect/oauth2/authorize`: back to `redirect_uri` with a fresh code for `authorize_as`."""
            q = request.query_params
            if self.authorize_as is None or not q.get("redirect_uri"):
                return PlainTextResponse("no user", status_code=400)
            code = self.issue_code(self.authorize_as)
            target = f"{q['redirect_uri']}?code={code}&state={q.get('state', '')}"
            return Response(status_code=302, headers={"Location": target})

        return Starlette(routes=[
            Route("/sns/oauth2/access_token", sns_token), Route("/connect/oauth2/authorize", authorize),
            Route("/cgi-bin/user/getuserinfo", getuserinfo),
            Route("/cgi-bin/token", token), Route("/cgi-bin/gettoken", token),
            Route("/cgi-bin/showqrcode", showqrcode),
            Route("/cgi-bin/{path:path}", api, methods=["POST"]),
        ])


def _multipart(content_type: str, raw: bytes) -> dict[str, Any]:
    """The one file part of a multipart/form-data body: its field name, file name, content type and bytes."""
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        f"Content-Type: {content_type}\r\n\r\n".encode() + raw)
    (part,) = [p for p in message.iter_parts()]
    return {"field": part.get_param("name", header="content-disposition"), "filename": part.get_filename(),
            "content_type": part.get_content_type(), "data": part.get_payload(decode=True)}


@contextmanager
def serve(app: ASGIApp) -> Iterator[str]:
    """`app` served by uvicorn on a free port of 127.0.0.1 for the duration of the block; yields its base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, lifespan="off", http="h11", ws="none", log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="wechat-test-server", daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started:
            if time.monotonic() > deadline or not thread.is_alive():
                raise RuntimeError("the test server did not start")
            time.sleep(0.01)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


@contextmanager
def serve_fake() -> Iterator[FakeWeixin]:
    """The fake API on 127.0.0.1; its `base_url` is what `MIANZI_WECHAT_API_URL` would be."""
    fake = FakeWeixin()
    with serve(fake.app()) as url:
        fake.base_url = f"{url}/cgi-bin/"
        yield fake


def weixin_api(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeWeixin]:
    """A test's fake API, reached without a proxy: `yield from weixin_api(monkeypatch)` in a fixture."""
    loopback(monkeypatch)
    with serve_fake() as api:
        yield api


@contextmanager
def http_client(app: ASGIApp) -> Iterator[httpx.Client]:
    """A client of `app` served over real HTTP on loopback (no proxies)."""
    with serve(app) as url, httpx.Client(base_url=url, trust_env=False, timeout=30) as client:
        yield client


def fresh_stamp(timestamp: str | None = None, nonce: str | None = None) -> tuple[str, str]:
    """A callback's `timestamp` (now, unless given) and `nonce` (a new random one, unless given)."""
    return (timestamp if timestamp is not None else str(int(time.time())),
            nonce if nonce is not None else str(secrets.randbelow(10**10)))


def signed_query(token: str, timestamp: str | None = None, nonce: str | None = None, **extra: str) -> dict[str, str]:
    """Query parameters of a plaintext-mode callback, signed as WeChat signs them (now, a new nonce)."""
    timestamp, nonce = fresh_stamp(timestamp, nonce)
    return {"signature": signature(token, timestamp, nonce), "timestamp": timestamp, "nonce": nonce, **extra}


FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "wechat"


def sample_xml(name: str, **fields: str) -> str:
    """A sample callback from `tests/fixtures/wechat/`, with some fields' values replaced."""
    xml = (FIXTURES / f"{name}.xml").read_text(encoding="utf-8").strip()
    for tag, value in fields.items():
        pattern = re.compile(rf"<{tag}>(<!\[CDATA\[)?.*?(\]\]>)?</{tag}>", re.S)
        new = f"<{tag}>{cdata(value)}</{tag}>" if tag not in ("CreateTime", "MsgId") else f"<{tag}>{value}</{tag}>"
        xml, count = pattern.subn(lambda _m, new=new: new, xml)
        if not count:
            xml = xml.replace("</xml>", new + "</xml>")
    return xml


def reply_fields(body: str) -> dict[str, str]:
    """The fields of a passive reply (any well-formed XML; CDATA sections joined as a parser does)."""
    return {k: v or "" for k, v in xmltodict.parse(body)["xml"].items()}


def build_program(engine: Engine) -> dict[str, str]:
    """Captain and dealers in two teams, sales yesterday, a contest running today; one invite each.

    Dates follow the real clock: the callbacks run the core at the current time.
    """
    today = datetime.now(SH).date()
    with session_scope(engine) as s:
        b.partners(s, {"code": "CAP", "name": "王队长", "team": "EAST", "role": "captain"},
                   *({"code": f"P{i}", "name": f"经销商{i}", "team": "EAST" if i <= 3 else "WEST"} for i in range(1, 6)))
        when = f"{today - timedelta(days=1)}T10:00"
        b.sales(s, *({"id": f"s{i}", "partner": f"P{i}", "occurred_at": when, "amount": str(60000 - i * 10000)}
                     for i in range(1, 6)),
                {"id": "c1", "partner": "CAP", "occurred_at": when, "amount": "1000"})
        b.contest(s, name="本月销售冠军", start=str(today - timedelta(days=10)), end=str(today + timedelta(days=10)),
                  prizes="1=500,2=300,3=100", top_n=3)
        invites = {}
        for code in ("CAP", "P1", "P2", "P4"):
            partner = s.execute(select(Partner).where(Partner.code == code)).scalar_one()
            invites[code] = new_invite(s, partner).code
        return invites
