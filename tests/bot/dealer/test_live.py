"""The page's live updates (server-sent events): an event when the dealer's own standing moves after
a sale, none for a sale that does not move it; and a server with open streams still stops."""

from __future__ import annotations

import json
import queue
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from sqlalchemy import Engine, select

from models import web_sessions
from models.db import session_scope
from models.kinds import WebKind
from models.tables import Partner
from models.values import utcnow
from tests.bot.dealer.conftest import API_TOKEN, TG
from tests.support.dealer_web import telegram_signed_in
from tests.support.live_app import serve_process


def events(client: httpx.Client, into: queue.Queue[tuple[str, dict[str, object]]]) -> None:
    try:
        with client.stream("GET", "/me/events", timeout=30) as stream:
            name = ""
            for line in stream.iter_lines():
                if line.startswith("event:"):
                    name = line.removeprefix("event:").strip()
                elif line.startswith("data:"):
                    into.put((name, json.loads(line.removeprefix("data:"))))
    except httpx.HTTPError:
        pass


def sell(site: httpx.Client, ident: str, code: str, amount: str) -> None:
    record = {"id": ident, "partner": code, "occurred_at": utcnow().isoformat(), "amount": amount, "units": 1}
    assert site.post("/api/sales", json=[record], headers={"Authorization": f"Bearer {API_TOKEN}"}).status_code == 200


def test_an_event_when_my_standing_moves(site: httpx.Client, program: dict[str, int]) -> None:
    assert telegram_signed_in(site, TG["P1"]).status_code == 303
    got: queue.Queue[tuple[str, dict[str, object]]] = queue.Queue()
    threading.Thread(target=events, args=(site, got), daemon=True).start()
    name, hello = got.get(timeout=10)
    solo = str(program["solo"])
    assert name == "hello" and hello["marks"][solo]["rank"] == 4  # type: ignore[index]
    sell(site, "other-1", "W2", "10")  # another dealer's small sale: P1's line does not move
    sell(site, "mine-1", "P1", "25000")
    name, moved = got.get(timeout=15)
    assert name == "standing"
    assert moved["before"][solo]["rank"] == 4 and moved["marks"][solo]["rank"] == 3  # type: ignore[index]
    assert moved["marks"][solo]["tier"] == "银牌"  # type: ignore[index]
    assert got.empty()


def test_a_server_with_open_event_streams_stops(db_url: str, engine: Engine, program: dict[str, int],
                                                tmp_path: Path) -> None:
    with session_scope(engine) as s:
        partner = s.execute(select(Partner).where(Partner.code == "P1")).scalar_one()
        cookie = web_sessions.open_session(s, partner=partner, kind=WebKind.DEALER, now=datetime.now(UTC),
                                           idle=timedelta(hours=1))
    env = {"MIANZI_DATABASE_URL": db_url, "MIANZI_TELEGRAM_TOKEN": None, "MIANZI_API_TOKEN": None,
           "MIANZI_PUBLIC_URL": "http://127.0.0.1"}
    got: queue.Queue[tuple[str, dict[str, object]]] = queue.Queue()
    started = 0.0
    with serve_process(tmp_path, env) as served:
        client = httpx.Client(base_url=f"http://127.0.0.1:{served.port}", trust_env=False,
                              cookies={"mianzi_dealer": cookie})
        threading.Thread(target=events, args=(client, got), daemon=True).start()
        assert got.get(timeout=10)[0] == "hello"
        started = time.monotonic()
    assert time.monotonic() - started < 25  # cut after the graceful shutdown's 10 s, not the stream's 10 minutes
    assert "Application shutdown complete" in served.printed
