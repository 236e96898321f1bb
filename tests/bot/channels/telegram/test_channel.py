"""The Telegram adapter end to end: real update JSON posted to the ASGI app, replies caught by a
fake Bot API server on 127.0.0.1 (`tests/support/fake_telegram.py`). Nothing touches the internet.

These tests rely only on `/help` and on unknown input getting *some* reply; what the replies say
is tested with the handlers.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, func, select

import handlers.dispatch
from bot.channels.telegram.channel import SECRET_HEADER, command_text, incoming_from_update
from bot.channels.telegram.limits import TEXT_LIMIT, fit_text, utf16_len
from bot.core.dedupe import RecentKeys
from bot.settings import Settings
from bot.web.app import create_app
from messages.render import t
from models.tables import InboundSeen
from tests.support.fake_telegram import (
    HEADERS,
    SECRET,
    WEBHOOK,
    FakeBotApi,
    bot_api,
    post,
    sample,
    settings_for,
    text_update,
)
from tests.support.live_app import StartupFailed, live_app


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeBotApi]:
    yield from bot_api(monkeypatch)


@pytest.fixture
def client(db_url: str, fake: FakeBotApi) -> Iterator[httpx.Client]:
    """The app in webhook mode, its lifespan running (getMe, setWebhook)."""
    with live_app(create_app(settings_for(fake))) as c:
        yield c


# --- start-up ---------------------------------------------------------------------------------------


def test_startup_asks_who_we_are_and_registers_the_webhook(client: httpx.Client, fake: FakeBotApi) -> None:
    assert fake.methods()[:2] == ["getMe", "setWebhook"]
    hook = fake.sent("setWebhook")[0]
    assert hook["url"] == WEBHOOK
    assert hook["secret_token"] == SECRET
    assert set(hook["allowed_updates"]) >= {"message", "callback_query"}
    assert {c.token for c in fake.calls} == {"123456:TEST-token"}


def test_healthz_reports_database_and_channels(client: httpx.Client) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"database": "ok", "channels": {"telegram": True, "wechat": False, "wecom": False},
                               "scheduler": True, "scheduler_leader": True, "delivery": True,
                               "delivering_for": ["telegram"]}


def test_without_any_channel_the_app_still_serves(db_url: str) -> None:
    with live_app(create_app(Settings())) as c:
        assert c.get("/healthz").json() == {"database": "ok", "scheduler": True, "scheduler_leader": True, "delivery": False,
                                            "delivering_for": [], "channels": {"telegram": False, "wechat": False, "wecom": False}}
        assert c.post("/telegram/webhook", json=sample("private_command")).status_code == 404
        assert c.post("/api/sales", json=[]).status_code == 404


def test_a_rejected_token_stops_the_start_up_cleanly(db_url: str, fake: FakeBotApi) -> None:
    fake.fail("getMe", 401, "Unauthorized")
    with pytest.raises(StartupFailed), live_app(create_app(settings_for(fake))):
        pass
    assert fake.methods() == ["getMe"]


# --- the secret -------------------------------------------------------------------------------------


@pytest.mark.parametrize("headers", [None, {SECRET_HEADER: "wrong"}, {SECRET_HEADER: SECRET + "x"},
                                     {SECRET_HEADER: ""}])
def test_missing_or_wrong_secret_is_403_and_nothing_is_processed(client: httpx.Client, fake: FakeBotApi,
                                                                  headers: dict[str, str] | None) -> None:
    update = text_update(20001, "/help")
    assert post(client, update, headers=headers) == 403
    assert fake.sent("sendMessage") == []
    # the refused request did not claim the update_id: Telegram's own delivery still gets answered
    assert post(client, update) == 200
    assert len(fake.sent("sendMessage")) == 1


def test_bad_bodies_are_400(client: httpx.Client, fake: FakeBotApi) -> None:
    url = "/telegram/webhook"
    assert client.post(url, content=b"{not json", headers=HEADERS).status_code == 400
    assert client.post(url, json=[1, 2], headers=HEADERS).status_code == 400
    assert client.post(url, json={"message": {}}, headers=HEADERS).status_code == 400
    assert client.post(url, json={"update_id": "7"}, headers=HEADERS).status_code == 400
    message = text_update(20100, "/help")["message"]
    misshapen = [{"message": "/help"}, {"message": {**message, "chat": "1111111"}},
                 {"message": {**message, "from": {**message["from"], "id": "1111111"}}},
                 {"message": {**message, "message_id": None}}, {"message": {**message, "text": 7}},
                 {"callback_query": {**sample("callback_query")["callback_query"], "id": 4382}},
                 {"edited_message": {**sample("edited_message")["edited_message"], "chat": None}}]
    for n, shape in enumerate(misshapen):
        assert client.post(url, json={"update_id": 20101 + n, **shape}, headers=HEADERS).status_code == 400, shape
    assert fake.sent("sendMessage") == [] and fake.sent("answerCallbackQuery") == []
    assert post(client, {**sample("callback_query"), "update_id": 20106}) == 200  # refused ones were not claimed
    assert len(fake.sent("answerCallbackQuery")) == 1


# --- messages ---------------------------------------------------------------------------------------


def test_private_help_gets_a_reply_in_that_chat(client: httpx.Client, fake: FakeBotApi) -> None:
    assert post(client, text_update(20002, "/help", chat_id=5550001)) == 200
    [message] = fake.sent("sendMessage")
    assert message["chat_id"] == "5550001"
    assert 0 < utf16_len(message["text"]) <= TEXT_LIMIT
    assert "Traceback" not in message["text"]
    assert "parse_mode" not in message  # plain text: nothing a user typed becomes markup


def test_unknown_text_gets_some_reply(client: httpx.Client, fake: FakeBotApi) -> None:
    assert post(client, text_update(20003, "'; DROP TABLE partner; --")) == 200
    assert post(client, text_update(20004, "x" * 4096)) == 200
    assert [m["chat_id"] for m in fake.sent("sendMessage")] == ["1111111", "1111111"]


def test_the_same_update_id_is_answered_once(client: httpx.Client, fake: FakeBotApi, engine: Engine) -> None:
    update = text_update(20005, "/help")
    for _ in range(3):
        assert post(client, update) == 200
    assert len(fake.sent("sendMessage")) == 1
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(InboundSeen)).scalar_one() == 1


def test_duplicates_are_caught_across_workers(db_url: str, fake: FakeBotApi) -> None:
    """Two app instances (two web workers) on one database: the update is still answered once."""
    update = text_update(20006, "/help")
    with live_app(create_app(settings_for(fake))) as one, live_app(create_app(settings_for(fake))) as two:
        assert post(one, update) == 200
        assert post(two, update) == 200
    assert len(fake.sent("sendMessage")) == 1


def test_sticker_gets_a_short_reply(client: httpx.Client, fake: FakeBotApi) -> None:
    assert post(client, sample("sticker")) == 200
    [message] = fake.sent("sendMessage")
    assert message["chat_id"] == "1111111"
    assert 0 < len(message["text"]) < 500


def test_callback_query_is_acknowledged_and_answered(client: httpx.Client, fake: FakeBotApi) -> None:
    assert post(client, sample("callback_query")) == 200
    [ack] = fake.sent("answerCallbackQuery")
    assert ack["callback_query_id"] == "4382bfdwdsb323b2d9"
    assert [m["chat_id"] for m in fake.sent("sendMessage")] == ["1111113"]
    assert fake.methods().index("answerCallbackQuery") < fake.methods().index("sendMessage")


def test_edited_message_is_not_run_again(client: httpx.Client, fake: FakeBotApi) -> None:
    assert post(client, sample("edited_message")) == 200
    [message] = fake.sent("sendMessage")
    assert message == {"chat_id": "1111111", "text": t("web.edited_ignored", "zh")}


def test_blocked_bot_is_ignored(client: httpx.Client, fake: FakeBotApi) -> None:
    assert post(client, sample("my_chat_member_blocked")) == 200
    assert fake.sent("sendMessage") == []


def test_a_user_who_blocked_the_bot_does_not_break_the_webhook(client: httpx.Client, fake: FakeBotApi) -> None:
    fake.fail("sendMessage", 403, "Forbidden: bot was blocked by the user")
    assert post(client, text_update(20007, "/help")) == 200
    fake.fail("sendMessage", 429, "Too Many Requests: retry after 3")
    assert post(client, text_update(20008, "/help")) == 200
    assert len(fake.sent("sendMessage")) == 2


def test_a_failing_core_sends_an_apology_not_a_stack_trace(client: httpx.Client, fake: FakeBotApi,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*_args: Any, **_kw: Any) -> list:
        raise RuntimeError("secret internals: password=hunter2")

    monkeypatch.setattr(handlers.dispatch, "dispatch", broken)
    assert post(client, text_update(20009, "/help", language="zh-hans")) == 200
    assert post(client, text_update(20010, "/help", chat_id=2222, language="en")) == 200
    assert [(m["chat_id"], m["text"]) for m in fake.sent("sendMessage")] == [
        ("1111111", "抱歉，出了点问题，请稍后再试。"),
        ("2222", "Sorry, something went wrong. Please try again later."),
    ]


# --- long polling -----------------------------------------------------------------------------------


def test_without_a_webhook_url_the_bot_long_polls(db_url: str, fake: FakeBotApi) -> None:
    settings = settings_for(fake, telegram_webhook_url=None)
    with live_app(create_app(settings)) as c:
        assert c.post("/telegram/webhook", json=sample("private_command")).status_code == 404
        fake.push_update(text_update(20011, "/help", chat_id=3333))
        [message] = fake.wait_for("sendMessage")
        assert message["chat_id"] == "3333"
        assert "setWebhook" not in fake.methods()
        assert "deleteWebhook" in fake.methods()
    assert fake.methods()[-1] in ("getUpdates", "sendMessage")  # stopped: no more calls after shutdown
    count = len(fake.calls)
    fake.push_update(text_update(20012, "/help"))
    assert len(fake.calls) == count


# --- the conversion, unit by unit -------------------------------------------------------------------


def test_group_commands_lose_our_name_and_other_bots_commands_are_not_ours() -> None:
    group = sample("group_command")
    incoming = incoming_from_update(group, "Mianzi_Bot")
    assert incoming is not None
    assert (incoming.text, incoming.is_group, incoming.chat_ref, incoming.user_ref) == (
        "/team", True, "-1001234567890", "1111111")
    assert incoming_from_update(group, "OtherBot") is None

    assert command_text("/rank@mianzi_bot 2 3", "mianzi_bot") == "/rank 2 3"
    assert command_text("/rank 2", "mianzi_bot") == "/rank 2"
    assert command_text("排行", "mianzi_bot") == "排行"
    assert command_text("/rank@other_bot", "mianzi_bot") is None


def test_private_messages_stickers_and_callbacks_become_incoming() -> None:
    private = incoming_from_update(sample("private_command"), "mianzi_bot")
    assert private is not None
    assert (private.platform, private.text, private.is_group, private.locale_hint, private.display_name) == (
        "telegram", "/rank", False, "zh-hans", "强 王")
    sticker = incoming_from_update(sample("sticker"), "mianzi_bot")
    assert sticker is not None and sticker.text is None
    query = incoming_from_update(sample("callback_query"), "mianzi_bot")
    assert query is not None
    assert (query.callback_data, query.text, query.chat_ref) == ("broadcast:confirm:42", None, "1111113")
    assert incoming_from_update(sample("my_chat_member_blocked"), "mianzi_bot") is None


def test_replies_fit_telegrams_limit_in_utf16_units() -> None:
    medals = "\n".join("🥇 第一名 ¥12,345.00" for _ in range(600))  # emoji count twice in UTF-16
    cut = fit_text(medals)
    assert utf16_len(cut) <= TEXT_LIMIT
    assert cut.endswith("…")
    assert medals.startswith(cut[:-1].rstrip())  # cut at a line boundary, nothing garbled
    one_line = "面" * 5000
    assert len(fit_text(one_line)) <= TEXT_LIMIT
    assert fit_text("short") == "short"


def test_recent_keys_forget_the_oldest() -> None:
    keys = RecentKeys(capacity=3)
    assert [keys.seen_before("telegram", k) for k in "abca"] == [False, False, False, True]
    assert keys.seen_before("wechat", "a") is False  # platforms do not share ids
    assert keys.seen_before("telegram", "b") is False  # forgotten: capacity 3
    assert len(keys) == 3


def test_database_keys_claim_once_and_prune_old_rows(engine: Engine) -> None:
    from datetime import timedelta

    from bot.core.dedupe import DatabaseKeys, Layered

    keys = DatabaseKeys(engine, keep=timedelta(0), prune_every=3)
    assert keys.seen_before("telegram", "1") is False
    assert DatabaseKeys(engine).seen_before("telegram", "1") is True  # another worker, same database
    assert keys.seen_before("wechat", "1") is False
    assert keys.seen_before("telegram", "2") is False  # third claim: everything older than now is pruned
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(InboundSeen)).scalar_one() <= 1
    both = Layered(RecentKeys(), DatabaseKeys(engine))
    assert [both.seen_before("telegram", "9"), both.seen_before("telegram", "9")] == [False, True]


def test_a_claim_commits_or_rolls_back_with_the_answer_it_belongs_to(engine: Engine) -> None:
    from bot.core.dedupe import DatabaseKeys

    keys = DatabaseKeys(engine)
    with engine.connect() as conn, conn.begin() as transaction:
        assert keys.claim(conn, "telegram", "7") is True
        transaction.rollback()  # the answer failed: the delivery is not taken
    with engine.begin() as conn:
        assert keys.claim(conn, "telegram", "7") is True
    with engine.begin() as conn:
        assert keys.claim(conn, "telegram", "7") is False  # no error: the transaction stays usable
        assert conn.execute(select(func.count()).select_from(InboundSeen)).scalar_one() == 1


def test_claims_in_transactions_prune_old_rows_in_the_same_transaction(engine: Engine) -> None:
    from datetime import timedelta

    from bot.core.dedupe import DatabaseKeys

    keys = DatabaseKeys(engine, keep=timedelta(0), prune_every=2)
    for key in ("1", "2", "3"):
        with engine.begin() as conn:  # a prune on another connection would wait for this one's lock
            assert keys.claim(conn, "telegram", key) is True
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(InboundSeen)).scalar_one() == 2  # "1" went at claim 2


# --- the core in a process of its own (MIANZI_CORE_PROCESS) ---------------------------------------


def test_with_the_core_in_its_own_process_the_conversation_is_the_same(db_url: str, fake: FakeBotApi,
                                                                       engine: Engine) -> None:
    import multiprocessing
    import os
    import signal
    from datetime import timedelta

    from models.db import session_scope
    from models.identities import new_invite
    from models.tables import Partner
    from models.values import utcnow
    from tests.support import builders as b

    today = utcnow().date()
    with session_scope(engine) as s:
        b.partners(s, {"code": "P1", "name": "经销商一"}, {"code": "P2", "name": "经销商二"})
        b.sales(s, {"id": "s1", "partner": "P1", "occurred_at": f"{today}T01:00", "amount": "500"},
                {"id": "s2", "partner": "P2", "occurred_at": f"{today}T01:00", "amount": "900"})
        b.contest(s, name="本月冠军", start=str(today - timedelta(days=3)), end=str(today + timedelta(days=20)))
        code = new_invite(s, s.execute(select(Partner).where(Partner.code == "P1")).scalar_one()).code
    before = set(multiprocessing.active_children())
    with live_app(create_app(settings_for(fake, core_process=True))) as client:
        children = [p for p in multiprocessing.active_children() if p not in before]
        assert len(children) == 1  # spawned at start-up, before the first message
        assert post(client, text_update(30001, f"/start {code}")) == 200
        rank = text_update(30002, "/rank")
        assert [post(client, rank) for _ in range(2)] == [200, 200]
        texts = [m["text"] for m in fake.sent("sendMessage")]
        assert len(texts) == 2 and "经销商一" in texts[0]
        assert "本月冠军" in texts[1] and "🥇 经销商二" in texts[1] and "第 2 名" in texts[1]

        os.kill(children[0].pid, signal.SIGKILL)  # the core process dies: an apology, then a new one answers
        children[0].join(5)
        assert post(client, text_update(30003, "/rank")) == 200
        assert post(client, text_update(30004, "/rank")) == 200
        texts = [m["text"] for m in fake.sent("sendMessage")][2:]
        assert texts[0] == t("web.internal_error", "zh") and "本月冠军" in texts[1]
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(InboundSeen)).scalar_one() == 3  # 30003 was not kept
    assert [p for p in multiprocessing.active_children() if p not in before] == []  # stopped with the app
