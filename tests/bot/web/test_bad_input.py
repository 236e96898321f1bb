"""Bad input at every door (issue 12): oversized and deeply nested bodies, numbers no row can have,
invisible characters in names, a database that cannot be written, the start-up line.

Bad input gets a clear answer, changes nothing, and never leaves a traceback for a user.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
import unicodedata
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from sqlalchemy import Engine, select, update
from sqlmodel import Session
from starlette.types import ASGIApp

from bot import context
from bot.channels.telegram.channel import MAX_UPDATE_BYTES
from bot.channels.wechat.callback_xml import MAX_BODY
from bot.cli.serve import channel_names
from bot.settings import Settings
from bot.web import health as health_module
from bot.web import sales_api as api
from bot.web.app import create_app
from handlers.parse import id_arg, is_number
from messages.render import t
from models.db import session_scope
from models.tables import Contest, Partner, Team
from models.values import visible
from tests.support import builders as b
from tests.support import console
from tests.support.cli_runner import mianzi
from tests.support.console import ask, bound
from tests.support.fake_telegram import HEADERS, FakeBotApi, bot_api, settings_for, text_update
from tests.support.fake_wechat import signed_query
from tests.support.live_app import live_app, serve_process
from tests.support.spies import spy_on_dispatch

MIB = 1 << 20


@pytest.fixture
def program(engine: Engine) -> dict[str, int]:
    return console.program(engine)


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeBotApi]:
    yield from bot_api(monkeypatch)


@pytest.fixture
def dispatched(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Every message the core was asked to answer."""
    return spy_on_dispatch(monkeypatch, lambda incoming: incoming)


# --- bodies -----------------------------------------------------------------------------------------


def post_chunked(app: ASGIApp, path: str, query: dict[str, str], headers: dict[str, str],
                 chunks: int, chunk: bytes) -> tuple[int, int]:
    """POST a chunked body of `chunks` × `chunk` (no Content-Length) to the ASGI app, as uvicorn
    hands one over; returns the status and how many chunks the app took before answering."""
    taken = 0
    status = 0

    async def receive() -> dict[str, Any]:
        nonlocal taken
        if taken >= chunks:
            await asyncio.sleep(3600)  # nothing more will come: an app that waits for more hangs the test
        taken += 1
        return {"type": "http.request", "body": chunk, "more_body": taken < chunks}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    raw = [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
             "path": path, "raw_path": path.encode(), "query_string": urlencode(query).encode(), "root_path": "",
             "headers": [(b"transfer-encoding", b"chunked"), *raw], "client": ("127.0.0.1", 5000),
             "server": ("127.0.0.1", 8000)}
    asyncio.run(asyncio.wait_for(app(scope, receive, send), 60))
    return status, taken


def test_a_chunked_telegram_body_is_read_only_up_to_the_limit(db_url: str, fake: FakeBotApi,
                                                               dispatched: list) -> None:
    app = create_app(settings_for(fake), background=False)
    status, taken = post_chunked(app, "/telegram/webhook", {}, HEADERS, chunks=300, chunk=b" " * MIB)
    assert status == 413
    assert taken <= MAX_UPDATE_BYTES // MIB + 1  # not the 300 MB (was: all of it, then 413)
    assert dispatched == []


def test_every_route_with_a_body_stops_reading_at_its_limit(db_url: str, dispatched: list) -> None:
    """One reader for all: WeChat, WeCom and the sales API stop where their limits are, too."""
    settings = Settings(api_token="api-token-0123456789", wechat_app_id="wx0123456789abcdef",
                        wechat_app_secret="s3cret", wechat_token="tok", wecom_corp_id="wx5823bf96d3bd56c7",
                        wecom_secret="corp-secret", wecom_agent_id="1000002", wecom_token="QDG6eK",
                        wecom_aes_key="jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C")
    app = create_app(settings, background=False)
    now = str(int(time.time()))
    cases = [("/wechat/callback", signed_query("tok", timestamp=now), {}, MAX_BODY),
             ("/wecom/callback", {"msg_signature": "0" * 40, "timestamp": now, "nonce": "1"}, {}, MAX_BODY),
             ("/api/sales", {}, {"Authorization": "Bearer api-token-0123456789"}, api.MAX_BODY_BYTES)]
    for path, query, headers, limit in cases:
        status, taken = post_chunked(app, path, query, headers, chunks=limit // MIB + 20, chunk=b" " * MIB)
        assert (path, status) == (path, 413)
        assert taken <= limit // MIB + 1, path
    assert dispatched == []


def test_deeply_nested_json_is_400_not_a_traceback(db_url: str, fake: FakeBotApi, dispatched: list,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    message = text_update(30001, "/help")["message"]
    deep: dict[str, Any] = dict(message)
    inner = deep
    for _ in range(900):  # json.loads copes; Telegram never quotes a quote (one level of reply_to_message)
        inner["reply_to_message"] = dict(message)
        inner = inner["reply_to_message"]
    with live_app(create_app(settings_for(fake))) as client:
        url = "/telegram/webhook"
        assert client.post(url, content=b"[" * 100_000, headers=HEADERS).status_code == 400
        assert client.post(url, content=b'{"update_id": 1, "x": ' + b"[" * 100_000, headers=HEADERS).status_code == 400
        assert client.post(url, content=json.dumps({"update_id": 30001, "message": deep}),
                           headers=HEADERS).status_code == 400
        assert client.post(url, json=text_update(30002, "/help"), headers=HEADERS).status_code == 200
    assert len(dispatched) == 1
    assert fake.sent("sendMessage")[0]["chat_id"] == "1111111"
    assert not [r for r in caplog.records if r.exc_info]



# --- numbers no row can have ------------------------------------------------------------------------

TOO_BIG = ["2147483648", "9999999999", "99999999999999999999", "9" * 200]  # past PostgreSQL's INTEGER, SQLite's int64


@pytest.mark.usefixtures("program")
@pytest.mark.parametrize("command, user", [
    ("/rank {}", "P1"), ("排行 {}", "P1"), ("fb:{}:5", "P1"), ("/training join {}", "P1"), ("报名 {}", "P1"),
    ("/approve {}", "BOSS"), ("驳回 #{} 重复", "BOSS"), ("/confirm {}", "BOSS"), ("取消 {}", "BOSS"),
    ("/deliveries {}", "BOSS"), ("/contests {}", "P1"),
])
def test_numbers_too_big_for_the_database_get_the_normal_not_found(engine: Engine, command: str, user: str,
                                                                   caplog: pytest.LogCaptureFixture) -> None:
    who = bound(engine, user)
    normal = ask(engine, who, command.format("12345"))
    assert "抱歉，出了点问题" not in normal and "went wrong" not in normal
    for number in TOO_BIG:
        assert ask(engine, who, command.format(number)) == normal.replace("12345", number), number
    assert not [r for r in caplog.records if r.levelname == "ERROR"]


def test_id_arguments_are_parsed_in_one_place() -> None:
    assert [id_arg(a) for a in ("12", "#12", "＃１２", " 7 ", "2147483647")] == [12, 12, 12, 7, 2147483647]
    assert [id_arg(a) for a in ("0", "2147483648", "9" * 5000, "-3", "1.5", "²", "", "abc")] == [None] * 8
    assert [is_number(a) for a in ("9" * 5000, "#0", "１２", "²", "-3", "")] == [True, True, True, False, False, False]


# --- invisible characters ---------------------------------------------------------------------------

RLO, ZWSP, LRI, PDI, BOM, ZWJ = "\u202e", "\u200b", "\u2066", "\u2069", "\ufeff", "\u200d"
FAMILY = f"👨{ZWJ}👩{ZWJ}👧"  # an emoji made with zero-width joiners: kept


def invisible_in(text: str) -> list[str]:
    return [f"U+{ord(c):04X}" for c in text if unicodedata.category(c) in ("Cf", "Cc") and c not in "\n\t"
            and c != ZWJ]


def test_names_lose_bidi_overrides_and_zero_width_characters_on_import(db_url: str, workdir: Path,
                                                                       engine: Engine) -> None:
    csv = ("code,name,team,joined_on\n"
           f"P1,{RLO}王五{ZWSP},EAST{BOM},2020-01-01\n"
           f"P2,李{LRI}四{PDI} {FAMILY},EAST,2020-01-01\n"
           f"P3,\u2067{ZWSP},EAST,2020-01-01\n")  # nothing visible: no name at all
    path = workdir / "p.csv"
    path.write_text(csv, encoding="utf-8")
    ran = mianzi("partners", "import", str(path))
    assert ran.code != 0 and "第 4 行：缺少 name" in ran.err  # P3's name is all invisible: no name at all
    path.write_text(csv.rsplit("P3", 1)[0], encoding="utf-8")
    assert mianzi("partners", "import", str(path)).code == 0
    with Session(engine) as s:
        assert sorted(s.execute(select(Partner.code, Partner.name)).all()) == [("P1", "王五"), ("P2", f"李四 {FAMILY}")]
        assert s.execute(select(Team.code, Team.name)).all() == [("EAST", "EAST")]


@pytest.mark.usefixtures("program")
def test_boards_show_no_bidi_overrides_even_for_names_stored_before(engine: Engine) -> None:
    with session_scope(engine) as s:  # as an older version imported them, and a contest named so by its admin
        s.execute(update(Partner).where(Partner.code == "P1").values(name=f"{RLO}1商销经{ZWSP}"))
        s.execute(update(Partner).where(Partner.code == "P2").values(name=f"经销商2 {FAMILY}"))
        s.execute(update(Contest).values(name=f"{LRI}11月销售冠军{PDI}{BOM}"))
    reply = ask(engine, bound(engine, "P3"), "排行")
    assert "1商销经" in reply and f"经销商2 {FAMILY}" in reply and "11月销售冠军" in reply
    assert invisible_in(reply) == []
    assert visible(f"中文 {FAMILY} 🏳️{ZWJ}🌈 a{ZWJ}b\u00ad{RLO}") == f"中文 {FAMILY} 🏳️{ZWJ}🌈 ab"


def test_visible_knows_every_invisible_character() -> None:
    every = [chr(c) for c in range(sys.maxunicode + 1)
             if unicodedata.category(chr(c)) in ("Cf", "Cc", "Zl", "Zp") and chr(c) not in "\n\t"]
    assert visible("".join(every)) == ""
    assert visible("排行\n第 1 名\t🥇 ¥12,345.00") == "排行\n第 1 名\t🥇 ¥12,345.00"


# --- a database that cannot be written --------------------------------------------------------------


def read_only(url: str) -> str:
    """The same database opened so that every write fails, as on a full disk or a read-only file
    (tests run as root: chmod would not stop them)."""
    if url.startswith("sqlite:///"):
        return f"sqlite:///file:{url.removeprefix('sqlite:///')}?mode=ro&uri=true"
    return url + ("&" if "?" in url else "?") + "options=-c%20default_transaction_read_only%3Don"


def test_healthz_and_the_sales_api_say_when_the_database_cannot_be_written(db_url: str, engine: Engine) -> None:
    with session_scope(engine) as s:
        b.partners(s, {"code": "P1"})
    settings = Settings(database_url=read_only(db_url), api_token="api-token-0123456789")
    with live_app(create_app(settings, background=False)) as client:
        health = client.get("/healthz")
        assert (health.status_code, health.json()["database"]) == (503, "read_only")
        sale = {"id": "S1", "partner": "P1", "occurred_at": "2026-11-10T10:00:00", "amount": "10.00", "units": 1}
        posted = client.post("/api/sales", json=[sale], headers={"Authorization": "Bearer api-token-0123456789"})
        assert posted.status_code == 503
        assert posted.json() == {"error": t("web.database_unwritable", "zh"), "reason": "read_only"}
    with live_app(create_app(Settings(), background=False)) as client:  # the same database, writable
        health = client.get("/healthz")
        assert (health.status_code, health.json()["database"]) == (200, "ok")


def test_a_held_sqlite_write_lock_is_busy_not_broken(db_url: str, engine: Engine) -> None:
    """An import holding SQLite's write lock for seconds must not make a load balancer drop the server."""
    if engine.dialect.name != "sqlite":
        pytest.skip("SQLite's single writer")
    with live_app(create_app(Settings(), background=False)) as client, engine.connect() as other:
        other.exec_driver_sql("BEGIN IMMEDIATE")
        try:
            health = client.get("/healthz")
        finally:
            other.rollback()
    assert (health.status_code, health.json()["database"]) == (200, "busy")


def test_the_write_check_is_shared_by_askers_within_its_ttl(db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    checks: list[Engine] = []
    monkeypatch.setattr(health_module, "check_writable", lambda engine: checks.append(engine) or "ok")

    async def ask_three_times() -> list[str]:
        health = health_module.DatabaseHealth(lambda: context.engine(), ttl=3600)
        return [await health.state() for _ in range(3)]

    assert asyncio.run(ask_three_times()) == ["ok"] * 3
    assert len(checks) == 1


# --- the start-up line ------------------------------------------------------------------------------


def test_serve_names_every_channel_it_answers_on(db_url: str, tmp_path: Path) -> None:
    env = {"MIANZI_DATABASE_URL": db_url, "MIANZI_LOCALE": "zh",
           "MIANZI_WECHAT_APP_ID": "wx0123456789abcdef", "MIANZI_WECHAT_TOKEN": "tok",
           "MIANZI_WECOM_CORP_ID": "wx5823bf96d3bd56c7", "MIANZI_WECOM_SECRET": "corp-secret",
           "MIANZI_WECOM_AGENT_ID": "1000002", "MIANZI_WECOM_TOKEN": "QDG6eK",
           "MIANZI_WECOM_AES_KEY": "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C",
           "MIANZI_TELEGRAM_TOKEN": None, "MIANZI_API_TOKEN": None, "MIANZI_WECHAT_APP_SECRET": None}
    with serve_process(tmp_path, env) as served:
        health = served.health
        assert health is not None and health["channels"] == {"telegram": False, "wechat": True, "wecom": True}
    printed = served.printed
    assert t("web.channels", "zh", channels=f"{t('web.wechat_on', 'zh')}、{t('web.wecom_on', 'zh')}") in printed


def test_the_start_up_line_names_telegram_wechat_and_wecom_together() -> None:
    settings = Settings(telegram_token="1:x", telegram_webhook_url="https://bot.example.test/telegram/webhook")
    on = {"telegram": True, "wechat": True, "wecom": True}
    assert channel_names(settings, on, "en") == ["Telegram (webhook)", "WeChat Official Account (/wechat/callback)",
                                                 "WeCom (/wecom/callback)"]
    assert channel_names(settings, {**on, "telegram": False, "wecom": False}, "zh") == ["微信公众号（/wechat/callback）"]
