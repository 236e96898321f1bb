"""A fake Bot API that enforces Telegram's flood ceilings and injects faults (tests and bench).

It answers `sendMessage` (and `getMe`), logs every accepted message with its arrival time, and
answers 429 with `retry_after` when a ceiling is exceeded: `rate` messages in any second overall,
one message per `chat_interval` seconds to one chat. Faults per chat id: `blocked` (403),
`flaky` (so many 502s first), `slow` (so many answers held longer than the client's timeout).
"""

from __future__ import annotations

import asyncio
import email
import json
import socket
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route


@dataclass
class FloodFake:
    rate: float = 30.0
    chat_interval: float = 0.0
    blocked: set[str] = field(default_factory=set)
    flaky: dict[str, int] = field(default_factory=dict)
    slow: dict[str, int] = field(default_factory=dict)
    slow_seconds: float = 1.0
    delivered: list[tuple[str, str, float]] = field(default_factory=list)
    refused: Counter = field(default_factory=Counter)  # reason → count
    throttled_at: list[float] = field(default_factory=list)
    photos: list[tuple[str, bytes]] = field(default_factory=list)
    log_path: str | None = None  # also append "chat_id<TAB>text<TAB>time" per delivered message here

    def __post_init__(self) -> None:
        self._recent: deque[float] = deque()
        self._last_chat: dict[str, float] = {}
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.port = 0
        self._log = open(self.log_path, "a", buffering=1) if self.log_path else None  # noqa: SIM115

    # --- the fake's answers --------------------------------------------------------------------

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/bot{token}/{method}", self._endpoint, methods=["POST", "GET"])])

    async def _endpoint(self, request: Request) -> JSONResponse:
        method = request.path_params["method"]
        params = await _params(request)
        if method == "getMe":
            return _ok({"id": 1, "is_bot": True, "first_name": "Mianzi", "username": "mianzi_bot"})
        if method not in ("sendMessage", "sendPhoto"):
            return _ok(True)
        if method == "sendPhoto":
            photo = params.get("photo", b"")
            self.photos.append((str(params.get("chat_id")), photo if isinstance(photo, bytes) else b""))
            params["text"] = params.get("caption", "")
        chat = str(params.get("chat_id"))
        if self.slow.get(chat, 0) > 0:
            self.slow[chat] -= 1
            self.refused["slow"] += 1
            await asyncio.sleep(self.slow_seconds)
            return _error(504, "Gateway Timeout")
        if self.flaky.get(chat, 0) > 0:
            self.flaky[chat] -= 1
            self.refused["5xx"] += 1
            return _error(502, "Bad Gateway")
        if chat in self.blocked:
            self.refused["blocked"] += 1
            return _error(403, "Forbidden: bot was blocked by the user")
        now = time.monotonic()
        while self._recent and now - self._recent[0] >= 1.0:
            self._recent.popleft()
        too_fast_chat = self.chat_interval and now - self._last_chat.get(chat, -1e9) < self.chat_interval
        if len(self._recent) >= self.rate or too_fast_chat:
            self.refused["429"] += 1
            self.throttled_at.append(now)
            return JSONResponse({"ok": False, "error_code": 429, "description": "Too Many Requests: retry after 1",
                                 "parameters": {"retry_after": 1}}, status_code=429)
        self._recent.append(now)
        self._last_chat[chat] = now
        self.delivered.append((chat, str(params.get("text", "")), now))
        if self._log is not None:
            self._log.write(f"{chat}\t{params.get('text', '')[:40]!r}\t{now:.6f}\n")
        return _ok({"message_id": len(self.delivered), "date": int(time.time()), "chat": _chat(chat),
                    "text": params.get("text", "")})

    # --- lifecycle -----------------------------------------------------------------------------

    def start(self) -> FloodFake:
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(self.app(), log_level="warning", lifespan="off", access_log=False)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [sock]}, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started and time.monotonic() < deadline:
            time.sleep(0.01)
        self._sock = sock
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
            if self._thread is not None:
                self._thread.join(timeout=10)
            self._sock.close()
            self._server = None

    def __enter__(self) -> FloodFake:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/bot"

    def per_chat(self) -> Counter:
        return Counter(chat for chat, _text, _t in self.delivered)

    def max_in_any_second(self) -> int:
        times = sorted(t for _c, _x, t in self.delivered)
        best, lo = 0, 0
        for hi, t in enumerate(times):
            while t - times[lo] >= 1.0:
                lo += 1
            best = max(best, hi - lo + 1)
        return best


async def _params(request: Request) -> dict[str, Any]:
    body = await request.body()
    kind = request.headers.get("content-type", "")
    if kind.startswith("application/json"):
        return json.loads(body or b"{}")
    if kind.startswith("multipart/form-data"):
        message = email.message_from_bytes(b"Content-Type: " + kind.encode() + b"\r\n\r\n" + body)
        fields: dict[str, Any] = {}
        for part in message.get_payload():  # type: ignore[union-attr]
            name = part.get_param("name", header="content-disposition")
            data = part.get_payload(decode=True)
            fields[name] = data if part.get_filename() else data.decode()
        return fields
    return {k: v[0] for k, v in parse_qs(body.decode()).items()}


def _chat(chat_id: str) -> dict:
    """The `chat` of a sent Message as the Bot API returns it (PTB refuses a chat without `type`)."""
    number = int(chat_id) if chat_id.lstrip("-").isdigit() else 0
    return {"id": number, "type": "private" if number > 0 else "supergroup"}


def _ok(result: Any) -> JSONResponse:
    return JSONResponse({"ok": True, "result": result})


def _error(code: int, description: str) -> JSONResponse:
    return JSONResponse({"ok": False, "error_code": code, "description": description}, status_code=code)


def main() -> None:
    """`python -m tests.support.fake_flood --port P --rate R`: the fake on its own, for the benchmarks."""
    import argparse

    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--rate", type=float, default=30.0)
    parser.add_argument("--log", help="append 'chat_id<TAB>monotonic time' per delivered message to this file")
    args = parser.parse_args()
    fake = FloodFake(rate=args.rate, log_path=args.log)
    app = fake.app()
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
