"""`POST /api/sales` over real HTTP: auth, validation (all or nothing), idempotency, standings refresh."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, event, func, select

from bot.settings import Settings
from bot.web import sales_api as api
from bot.web.app import create_app
from messages.render import t
from models.db import session_scope
from models.tables import Contest, Sale, Standing
from tests.support import builders as b
from tests.support.live_app import live_app

TOKEN = "api-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def record(ext_id: str, partner: str = "P1", amount: Any = "1000.00", **extra: Any) -> dict[str, Any]:
    return {"id": ext_id, "partner": partner, "occurred_at": "2026-11-10T10:00:00", "amount": amount,
            "units": 1, **extra}


@pytest.fixture
def client(engine: Engine) -> Iterator[httpx.Client]:
    with session_scope(engine) as s:
        b.partners(s, {"code": "P1"}, {"code": "P2"})
    # no scheduler: it would close the November contests these tests read (their period is over)
    with live_app(create_app(Settings(api_token=TOKEN), background=False)) as c:
        yield c


def sales_count(engine: Engine) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(Sale)).scalar_one()


def test_off_without_a_token_setting(db_url: str) -> None:
    with live_app(create_app(Settings())) as c:
        assert c.post("/api/sales", json=[record("S1")], headers=AUTH).status_code == 404


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN},
                                     {"Authorization": f"Basic {TOKEN}"}, {"Authorization": "Bearer"},
                                     {"Authorization": f"Bearer {TOKEN}x"}])
def test_wrong_or_missing_bearer_is_401(client: httpx.Client, engine: Engine, headers: dict[str, str]) -> None:
    response = client.post("/api/sales", json=[record("S1")], headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.json() == {"error": t("web.unauthorized", "zh")}
    assert sales_count(engine) == 0


def test_import_then_re_post_is_idempotent(client: httpx.Client, engine: Engine) -> None:
    batch = [record("S1"), record("S2", partner="P2", amount=1234.5, margin="100", customer="C9", satisfaction=5),
             record("S3", amount=7)]
    first = client.post("/api/sales", json=batch, headers=AUTH)
    assert first.status_code == 200
    assert first.json() == {"rows": 3, "inserted": 3, "unchanged": 0}
    again = client.post("/api/sales", json=batch, headers=AUTH)
    assert again.json() == {"rows": 3, "inserted": 0, "unchanged": 3}
    assert sales_count(engine) == 3
    with engine.connect() as conn:
        amounts = dict(conn.execute(select(Sale.ext_id, Sale.amount_fen)).all())
    assert amounts == {"S1": 100000, "S2": 123450, "S3": 700}  # JSON numbers kept exact, no float


def test_any_bad_record_rejects_the_batch_and_lists_every_one(client: httpx.Client, engine: Engine) -> None:
    batch = [record("S1"), record("S2", partner="NOPE"), record("S3", amount="-5"), "not an object",
             record("S5", amount="12.345", satisfaction=9)]
    response = client.post("/api/sales", json=batch, headers=AUTH)
    assert response.status_code == 422
    body = response.json()
    assert body["error"] == t("error.import_rejected", "zh", count=4)  # four bad records, five errors
    assert [(e["record"], e["code"]) for e in body["errors"]] == [
        (2, "row.unknown_partner"), (3, "row.money_negative"), (4, "row.not_an_object"),
        (5, "row.money_too_precise"), (5, "row.out_of_range")]
    assert body["errors"][0]["reason"] == t("row.unknown_partner", "zh", value="NOPE")
    assert sales_count(engine) == 0


def test_changed_content_under_a_known_id_is_refused(client: httpx.Client, engine: Engine) -> None:
    assert client.post("/api/sales", json=[record("S1")], headers=AUTH).status_code == 200
    response = client.post("/api/sales", json=[record("S1", amount="999.00"), record("S2")], headers=AUTH)
    assert response.status_code == 422
    assert [e["code"] for e in response.json()["errors"]] == ["row.conflicting_id"]
    assert sales_count(engine) == 1


@pytest.mark.parametrize("body", [b"{not json", b'{"id": "S1"}', b'"S1"', b"[NaN]", b"[" * 100_000])
def test_a_body_that_is_not_a_json_array_is_400(client: httpx.Client, body: bytes) -> None:
    response = client.post("/api/sales", content=body, headers={**AUTH, "Content-Type": "application/json"})
    assert response.status_code == 400
    assert response.json() == {"error": t("error.bad_json", "zh")}


def test_too_many_records_is_413(client: httpx.Client, engine: Engine) -> None:
    response = client.post("/api/sales", json=[{}] * (api.MAX_RECORDS + 1), headers=AUTH)
    assert response.status_code == 413
    assert response.json() == {"error": t("error.file_too_large", "zh", max=api.MAX_RECORDS)}
    assert sales_count(engine) == 0


def test_too_many_bytes_is_413(client: httpx.Client, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(api, "MAX_BODY_BYTES", 1000)
    assert client.post("/api/sales", json=[record(f"S{i}") for i in range(50)], headers=AUTH).status_code == 413

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted while reading
        yield b"["
        for i in range(200):
            yield b'{"id": "S%d"},' % i
        yield b"{}]"

    assert client.post("/api/sales", content=chunks(), headers=AUTH).status_code == 413


def test_live_standings_are_refreshed_after_an_import(client: httpx.Client, engine: Engine) -> None:
    with session_scope(engine) as s:
        contest_id = b.contest(s).id
    assert client.post("/api/sales", json=[record("S1"), record("S2", partner="P2", amount="50")],
                       headers=AUTH).status_code == 200
    with session_scope(engine) as s:
        contest = s.get(Contest, contest_id)
        assert contest is not None and contest.standings_dirty is False
        lines = s.execute(select(Standing.partner_id, Standing.rank).where(Standing.contest_id == contest_id)
                          .order_by(Standing.rank)).all()
    assert [rank for _pid, rank in lines] == [1, 2]


@pytest.mark.parametrize(("second", "status", "answer"), [
    ([record("S1", amount="999.00"), record("S2")], 422, ["row.conflicting_id"]),
    ([record("S1"), record("S2"), record("S3")], 200, {"rows": 3, "inserted": 1, "unchanged": 2}),
], ids=["other-content", "same-content"])
def test_a_concurrent_post_of_the_same_ids_is_compared_with_the_winner(
        client: httpx.Client, engine: Engine, monkeypatch: pytest.MonkeyPatch,
        second: list[dict[str, Any]], status: int, answer: Any) -> None:
    """Two requests at once: the first holds its inserted rows uncommitted until the second has
    read what it reads before writing and begun to write; the second must then be judged against
    the first's rows (422 for other content, unchanged for the same), never silently dropped."""
    from bot import context

    first_holds, second_writes = threading.Event(), threading.Event()
    real_refresh = api.refresh_dirty

    def holding_refresh(session: Any) -> None:  # runs in the first request, before its commit
        if not first_holds.is_set():
            first_holds.set()
            assert second_writes.wait(30), "the second request never began to write"
        real_refresh(session)

    def watch(statement: str | None) -> None:
        text = (statement or "").lstrip().upper()
        if first_holds.is_set() and text.startswith(("BEGIN", "INSERT INTO SALE ")):
            second_writes.set()

    app_engine = context.engine_for(engine.url.render_as_string(hide_password=False))
    if app_engine.dialect.name == "sqlite":  # the SQLite path writes through the DB-API cursor
        def on_checkout(dbapi_conn: Any, _record: Any, _proxy: Any) -> None:
            dbapi_conn.set_trace_callback(watch)
        listener: Any = on_checkout
        event.listen(app_engine, "checkout", listener)
    else:
        def before_execute(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
            watch(statement)
        listener = before_execute
        event.listen(app_engine, "before_cursor_execute", listener)
    monkeypatch.setattr(api, "refresh_dirty", holding_refresh)
    responses: dict[str, httpx.Response] = {}

    def post(name: str, batch: list[dict[str, Any]]) -> None:
        with httpx.Client(base_url=client.base_url, trust_env=False, timeout=60) as own:
            responses[name] = own.post("/api/sales", json=batch, headers=AUTH)

    try:
        first = threading.Thread(target=post, args=("first", [record("S1"), record("S2")]))
        first.start()
        assert first_holds.wait(30)
        later = threading.Thread(target=post, args=("second", second))
        later.start()
        first.join(60)
        later.join(60)
    finally:
        event.remove(app_engine, "checkout" if app_engine.dialect.name == "sqlite" else "before_cursor_execute",
                     listener)
    assert responses["first"].status_code == 200
    assert responses["first"].json() == {"rows": 2, "inserted": 2, "unchanged": 0}
    assert responses["second"].status_code == status, responses["second"].text
    if status == 422:
        assert [e["code"] for e in responses["second"].json()["errors"]] == answer
    else:
        assert responses["second"].json() == answer
    with engine.connect() as conn:
        amounts = dict(conn.execute(select(Sale.ext_id, Sale.amount_fen)).all())
    assert amounts == {"S1": 100000, "S2": 100000, **({"S3": 100000} if status == 200 else {})}
