"""WeCom pushes in batches: rows of one content go to up to 1000 members in one `message/send`.

Through the real doors: broadcasts queued with `mianzi broadcast`, the delivery worker built from the
settings as `mianzi serve` builds it, the fake WeCom API on 127.0.0.1 (which reads `touser` as WeCom
does and lists invalid members in its answer), and `mianzi deliveries report`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select
from sqlmodel import Session

from bot.channels.registry import ceilings, push_senders
from bot.delivery.worker import DeliveryWorker, Stats
from bot.settings import Settings, get_settings
from models import outbox
from models.db import session_scope
from models.tables import ChatIdentity, Outbox
from tests.support.cli_runner import mianzi
from tests.support.delivery import broadcast, content, drain, each_once, members, statuses
from tests.support.fake_wechat import Call, FakeWeixin, serve_fake
from tests.support.live_app import loopback


@pytest.fixture
def fake(db_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeWeixin]:
    loopback(monkeypatch)
    with serve_fake() as api:
        for name, value in {"WECOM_CORP_ID": "ww0123456789", "WECOM_SECRET": "corp", "WECOM_AGENT_ID": "1000002",
                            "WECOM_API_URL": api.base_url, "WECHAT_API_URL": api.base_url,
                            "WECOM_CHAT_INTERVAL": "0.3"}.items():
            monkeypatch.setenv(f"MIANZI_{name}", value)
        get_settings.cache_clear()
        yield api


def deliver(engine: Engine, settings: Settings | None = None, **options: Any) -> Stats:
    """What `mianzi serve`'s delivery worker does, until nothing is due (retries after a short backoff)."""
    settings = settings or get_settings()
    return drain(DeliveryWorker(engine, push_senders(settings, engine), ceilings(settings), backoff=0.05, **options))


def test_a_broadcast_to_2500_members_goes_in_three_calls(engine: Engine, fake: FakeWeixin) -> None:
    refs = members(engine, 2500)
    fake.invalid_users = {"Member0007", "Member1999"}  # left the company, or outside the app's visible range
    fake.unlicensed_users = {"Member2400"}
    bid = broadcast("今晚八点直播培训")
    stats = deliver(engine)

    calls = fake.sent("message/send")
    assert sorted(len(c.users) for c in calls) == [500, 1000, 1000]
    assert each_once(calls, refs) and len({content(c) for c in calls}) == 1
    assert content(calls[0]).startswith("📢 今晚八点直播培训")
    assert all(c.body["agentid"] == 1000002 and c.body["msgtype"] == "text" for c in calls)
    assert (stats.calls, stats.sent, stats.blocked, stats.undeliverable) == (3, 2497, 2, 1)
    assert fake.token_fetches == 1
    assert statuses(engine) == {"sent": 2497, "blocked": 2, "undeliverable": 1}
    with Session(engine) as s:  # the invalid members' rows and accounts, by WeCom's lowercased answer
        rows = dict(s.execute(select(Outbox.chat_ref, Outbox.last_error).where(Outbox.status != "sent")).all())
        inactive = set(s.execute(select(ChatIdentity.user_ref).where(ChatIdentity.active.is_(False))).scalars())
    assert rows == {"Member0007": "wecom_invalid_user", "Member1999": "wecom_invalid_user",
                    "Member2400": "wecom_unlicensed_user"}
    assert inactive == {"Member0007", "Member1999"}  # an unlicensed member keeps their account

    report = mianzi("deliveries", "report", str(bid), "--json").json()
    assert report["channels"]["wecom"] == {"pending": 0, "sending": 0, "sent": 2497, "failed": 0, "blocked": 2,
                                           "undeliverable": 1}
    assert {(r["status"], r["reason"], r["count"]) for r in report["reasons"]} == {
        ("blocked", "wecom_invalid_user", 2), ("undeliverable", "wecom_unlicensed_user", 1)}
    text = mianzi("deliveries", "report", str(bid)).out
    assert "wecom 已屏蔽：wecom_invalid_user（2）" in text and "wecom 无法送达：wecom_unlicensed_user（1）" in text


def test_different_contents_are_never_merged(engine: Engine, fake: FakeWeixin, monkeypatch: pytest.MonkeyPatch) -> None:
    zh = members(engine, 20)
    en = members(engine, 10, start=20, locale="en")
    monkeypatch.setenv("MIANZI_WECHAT_APP_ID", "wx0123456789abcdef")
    monkeypatch.setenv("MIANZI_WECHAT_APP_SECRET", "s3cret")
    get_settings.cache_clear()
    oa = members(engine, 3, platform="wechat", start=30)  # Official Account users: one call per row, as before
    training, meeting = broadcast("今晚八点直播培训"), broadcast("明早九点例会")
    again = broadcast("今晚八点直播培训")  # the same words again: the same content, but two messages each
    assert len({training, meeting, again}) == 3
    deliver(engine)

    calls = fake.sent("message/send")
    assert all(len(set(c.users)) == len(c.users) == 30 for c in calls)  # nobody named twice in one call
    by_text: dict[str, list[Call]] = {}
    for c in calls:
        by_text.setdefault(content(c), []).append(c)
    # two contents (a broadcast reads the same in both languages); the same words twice: one content, sent twice
    assert set(by_text) == {"📢 今晚八点直播培训", "📢 明早九点例会"} and len(calls) == 3
    for text, group in by_text.items():
        named = Counter(u for c in group for u in c.users)
        assert set(named) == set(zh + en) and set(named.values()) == ({2} if "培训" in text else {1})
        assert len(group) == (2 if "培训" in text else 1)
    custom = fake.sent("message/custom/send")
    assert len(custom) == 9 and Counter(c.body["touser"] for c in custom) == Counter({ref: 3 for ref in oa})
    assert statuses(engine) == {"sent": 99}
    # WeCom's per-member ceiling counts members, not calls: each call names all 30 members, so each waits
    # the interval after the one before. Arrival times: the first call also fetched the token on its way.
    at = sorted(c.at for c in calls)
    # The first call's arrival is late by its token fetch, so only the later spacing is a whole interval;
    # without the ceiling all three would arrive within milliseconds.
    assert at[2] - at[1] >= 0.3 * 0.9 and at[2] - at[0] >= 0.3 * 1.5


def test_a_server_error_retries_the_whole_batch(engine: Engine, fake: FakeWeixin) -> None:
    refs = members(engine, 1200)
    fake.fail_http("message/send", 502)
    broadcast("今晚八点直播培训")
    stats = deliver(engine)

    failed, *rest = fake.sent("message/send")
    assert failed.answer == {"status": 502} and len(failed.users) == 1000
    assert each_once(rest, refs) and set(failed.users) in [set(c.users) for c in rest]  # retried as one batch
    assert stats.retried == 1000 and statuses(engine) == {"sent": 1200}
    with Session(engine) as s:
        attempts = Counter(s.execute(select(Outbox.attempts)).scalars())
    assert attempts == {1: 1000, 0: 200}


def test_a_token_expiring_mid_run_is_refreshed_once(engine: Engine, fake: FakeWeixin) -> None:
    refs = members(engine, 2500)
    fake.revoke_after = 1  # the first call goes through; then the token is no longer good
    broadcast("今晚八点直播培训")
    deliver(engine)

    accepted = fake.accepted()
    rejected = [c for c in fake.sent("message/send") if c.answer.get("errcode") == 42001]
    assert sorted(len(c.users) for c in accepted) == [500, 1000, 1000] and each_once(accepted, refs)
    assert 1 <= len(rejected) <= 2 and all(c.token == "TOKEN-1" for c in rejected)
    assert fake.token_fetches == 2 and {c.token for c in accepted[1:]} == {"TOKEN-2"}
    assert statuses(engine) == {"sent": 2500}


def test_a_batch_of_only_invalid_members(engine: Engine, fake: FakeWeixin) -> None:
    refs = members(engine, 3)
    fake.invalid_users = set(refs)
    broadcast("今晚八点直播培训")
    deliver(engine)
    (call,) = fake.sent("message/send")
    assert call.answer["errcode"] == 81013 and call.answer["invaliduser"] == "member0000|member0001|member0002"
    assert statuses(engine) == {"blocked": 3}


def test_one_image_to_many_members(engine: Engine, fake: FakeWeixin, tmp_path: Path) -> None:
    refs = members(engine, 5)
    png = tmp_path / "board.png"
    png.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)))
    with session_scope(engine) as s:
        ids = {i.user_ref: i for i in s.execute(select(ChatIdentity)).scalars()}
        outbox.queue(s, [{"key": f"board:{ref}", "kind": "announcement", "platform": "wecom", "chat_ref": ref,
                          "identity_id": ids[ref].id, "partner_id": ids[ref].partner_id,
                          "payload": {"image": str(png), "caption": "🏅 本月榜单"}} for ref in refs])
    deliver(engine)
    image, caption = fake.sent("message/send")
    assert len(fake.uploads()) == 1 and image.body["image"]["media_id"] == "MEDIA-1"
    assert image.users == refs and caption.users == refs and content(caption) == "🏅 本月榜单"
    assert statuses(engine) == {"sent": 5}


def test_an_announcement_outside_a_broadcast_and_personal_pushes(engine: Engine, fake: FakeWeixin) -> None:
    refs = members(engine, 300)
    with session_scope(engine) as s:
        ids = {i.user_ref: i for i in s.execute(select(ChatIdentity)).scalars()}
        rows = []
        for n, ref in enumerate(refs):  # a contest's opening to everyone, and a personal nudge to a few
            rows.append({"key": f"opened:1:{ref}", "kind": "announcement", "platform": "wecom", "chat_ref": ref,
                         "identity_id": ids[ref].id, "payload": {"text": "🏁 新一期比赛开始了"}})
            if n % 100 == 0:
                rows.append({"key": f"nudge:1:{ref}", "kind": "nudge", "platform": "wecom", "chat_ref": ref,
                             "identity_id": ids[ref].id, "payload": {"text": f"您当前第 {n + 1} 名"}})
        outbox.queue(s, rows)
    stats = deliver(engine)
    calls = fake.sent("message/send")
    opening = [c for c in calls if content(c) == "🏁 新一期比赛开始了"]
    assert len(opening) == 1 and opening[0].users == refs  # more than one claim's worth, still one call
    assert sorted(c.users[0] for c in calls if c not in opening) == ["Member0000", "Member0100", "Member0200"]
    assert stats.calls == 4 and statuses(engine) == {"sent": 303}
