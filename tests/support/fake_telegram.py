"""A small fake Bot API server on 127.0.0.1, for tests and benchmarks, and what Telegram sends us.

It answers the methods the bot uses, records every call (method, token and parameters, whether
PTB sent them form-encoded or as JSON), can be told to fail a method, and serves `getUpdates`
from a queue for long-polling tests. Point the bot at `fake.base_url` (`settings_for(fake)`).

The other way: real update JSON (`tests/fixtures/telegram/`, `sample`, `text_update`) posted to
the webhook with the secret header (`post`).
"""

from __future__ import annotations

import copy
import json
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest

from bot.channels.telegram.channel import SECRET_HEADER
from bot.settings import Settings
from tests.support.live_app import loopback

BOT_ID = 7000000001
JSON_PARAMS = ("reply_markup", "allowed_updates", "entities", "link_preview_options", "reply_parameters")
POLL_HOLD = 0.2  # how long an empty getUpdates waits for an update (short, so shutdown is quick)


@dataclass(frozen=True)
class Call:
    method: str
    token: str
    params: dict[str, Any]


class FakeBotApi:
    def __init__(self, username: str = "mianzi_bot") -> None:
        self.username = username
        self.calls: list[Call] = []
        self.failures: dict[str, tuple[int, str]] = {}
        self.chat_failures: dict[str, tuple[int, str]] = {}  # chat id → the error `sendMessage` answers there
        self._updates: list[dict[str, Any]] = []
        self._cond = threading.Condition()
        self._message_id = 0
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle -------------------------------------------------------------------------------

    def start(self) -> FakeBotApi:
        fake = self

        class Handler(_Handler):
            api = fake

        self._server = _Server(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="fake-bot-api", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> FakeBotApi:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}/bot"

    # --- what tests use --------------------------------------------------------------------------

    def fail(self, method: str, code: int, description: str) -> None:
        """Answer `method` with a Bot API error from now on."""
        self.failures[method] = (code, description)

    def fail_chat(self, chat_id: int | str, code: int, description: str) -> None:
        """Answer `sendMessage` to this one chat with a Bot API error from now on (e.g. 403 for a user
        who never opened a private chat with the bot)."""
        self.chat_failures[str(chat_id)] = (code, description)

    def push_update(self, update: dict[str, Any]) -> None:
        """Queue an update for the next `getUpdates`."""
        with self._cond:
            self._updates.append(update)
            self._cond.notify_all()

    def sent(self, method: str = "sendMessage") -> list[dict[str, Any]]:
        with self._cond:
            return [c.params for c in self.calls if c.method == method]

    def methods(self) -> list[str]:
        with self._cond:
            return [c.method for c in self.calls]

    def wait_for(self, method: str, count: int = 1, timeout: float = 10.0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        with self._cond:
            while len([c for c in self.calls if c.method == method]) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"{count} × {method} not received in {timeout}s; got {self.methods()}")
                self._cond.wait(left)
            return [c.params for c in self.calls if c.method == method]

    # --- the server side -------------------------------------------------------------------------

    def record(self, method: str, token: str, params: dict[str, Any]) -> None:
        with self._cond:
            self.calls.append(Call(method, token, params))
            self._cond.notify_all()

    def respond(self, method: str, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        failure = self.failures.get(method)
        if method == "sendMessage" and str(params.get("chat_id")) in self.chat_failures:
            failure = self.chat_failures[str(params.get("chat_id"))]
        if failure is not None:
            code, description = failure
            body: dict[str, Any] = {"ok": False, "error_code": code, "description": description}
            if code == 429:
                body["parameters"] = {"retry_after": 3}
            return code, body
        if method == "getUpdates":
            return 200, {"ok": True, "result": self._take_updates(params)}
        result = self._result(method, params)
        if result is None:
            return 404, {"ok": False, "error_code": 404, "description": "Not Found"}
        return 200, {"ok": True, "result": result}

    def _result(self, method: str, params: dict[str, Any]) -> Any:
        if method == "getMe":
            return {"id": BOT_ID, "is_bot": True, "first_name": "Mianzi", "username": self.username,
                    "can_join_groups": True, "can_read_all_group_messages": False, "supports_inline_queries": False}
        if method == "sendMessage":
            with self._cond:
                self._message_id += 1
                message_id = self._message_id
            chat_id = int(params["chat_id"])
            return {"message_id": message_id, "date": int(time.time()),
                    "chat": {"id": chat_id, "type": "private" if chat_id > 0 else "supergroup"},
                    "from": {"id": BOT_ID, "is_bot": True, "first_name": "Mianzi", "username": self.username},
                    "text": params.get("text", "")}
        if method in ("answerCallbackQuery", "setWebhook", "deleteWebhook", "setMyCommands", "setChatMenuButton"):
            return True
        if method == "getWebhookInfo":
            return {"url": "", "has_custom_certificate": False, "pending_update_count": 0}
        return None

    def _take_updates(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        offset = int(params.get("offset") or 0)
        deadline = time.monotonic() + POLL_HOLD
        with self._cond:
            while True:
                self._updates = [u for u in self._updates if u["update_id"] >= offset]
                if self._updates:
                    return list(self._updates)
                left = deadline - time.monotonic()
                if left <= 0:
                    return []
                self._cond.wait(left)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256  # the default 5 refuses connections when a benchmark opens many at once

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], ConnectionError):
            return  # the bot hung up (a long poll cancelled at shutdown): not worth a traceback
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    api: FakeBotApi
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
        self._handle()

    def do_GET(self) -> None:  # noqa: N802
        self._handle()

    def _handle(self) -> None:
        _, _, rest = self.path.partition("/bot")
        token, _, method = rest.split("?")[0].partition("/")
        params = self._params()
        self.api.record(method, token, params)
        status, body = self.api.respond(method, params)
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _params(self) -> dict[str, Any]:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        kind = self.headers.get("Content-Type", "")
        if not raw:
            return {}
        if kind.startswith("application/json"):
            return json.loads(raw)
        params: dict[str, Any] = {k: v[0] for k, v in parse_qs(raw.decode(), keep_blank_values=True).items()}
        for name in JSON_PARAMS:  # PTB sends nested objects as JSON strings inside the form
            if isinstance(params.get(name), str):
                params[name] = json.loads(params[name])
        return params

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (http.server's signature)
        pass


@contextmanager
def fake_bot_api(username: str = "mianzi_bot") -> Iterator[FakeBotApi]:
    with FakeBotApi(username) as fake:
        yield fake


def bot_api(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeBotApi]:
    """A test's fake Bot API, reached without a proxy: `yield from bot_api(monkeypatch)` in a fixture."""
    loopback(monkeypatch)
    with FakeBotApi() as api:
        yield api


# --- what Telegram sends ------------------------------------------------------------------------------

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "telegram"
SECRET = "s3cret-token_42"
WEBHOOK = "https://bot.example.test/telegram/webhook"
HEADERS = {SECRET_HEADER: SECRET}


def settings_for(fake: FakeBotApi, **overrides: Any) -> Settings:
    """Webhook mode against the fake: a token, its URL, the webhook and its secret."""
    values: dict[str, Any] = {"telegram_token": "123456:TEST-token", "telegram_api_url": fake.base_url,
                              "telegram_webhook_url": WEBHOOK, "telegram_secret": SECRET,
                              "telegram_bot_username": "mianzi_bot"}
    values.update(overrides)
    return Settings(**values)


def sample(name: str, **changes: Any) -> dict[str, Any]:
    """A real update from `tests/fixtures/telegram/`, some top-level fields replaced."""
    data = json.loads((FIXTURES / f"{name}.json").read_text(encoding="utf-8"))
    data.update(changes)
    return data


def text_update(update_id: int, text: str, chat_id: int = 1111111, language: str | None = "zh-hans") -> dict:
    """A private text message from user `chat_id` (in their private chat), its client in `language`."""
    data = copy.deepcopy(sample("private_command", update_id=update_id))
    data["message"]["text"] = text
    data["message"]["chat"]["id"] = chat_id
    data["message"]["from"]["id"] = chat_id
    data["message"].pop("entities")
    if language is None:
        data["message"]["from"].pop("language_code")
    else:
        data["message"]["from"]["language_code"] = language
    return data


def post(client: httpx.Client, update: dict, headers: dict[str, str] | None = HEADERS) -> int:
    """POST an update to the webhook (with the secret, unless told otherwise); the status code."""
    return client.post("/telegram/webhook", json=update, headers=headers or {}).status_code
