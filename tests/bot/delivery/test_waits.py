"""The delivery worker never sleeps long on a chat at its ceiling: such rows go back to the outbox.

Through the real worker, the fake WeCom API and the fake Bot API: a member at WeCom's hourly ceiling
with 200 messages queued does not hold up the others, their rows wait in the outbox (pending, no
attempt counted) for the hour to come round, and nothing is sent twice; a WeCom batch leaves only
that member out; a queue for one Telegram chat is spread over the chat's interval instead of
filling the send slots. The hour passes at once: the worker's clocks (its own injection points)
run at real speed plus an offset the test moves forward.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
from sqlalchemy import Engine, select
from sqlmodel import Session

from bot.channels.registry import ceilings, push_senders
from bot.channels.telegram.push import TelegramPush
from bot.delivery.limiter import Ceilings
from bot.delivery.worker import DeliveryWorker
from bot.settings import get_settings
from models import outbox
from models.db import session_scope
from models.tables import Outbox
from models.values import as_utc, utcnow
from tests.support.cli_runner import mianzi
from tests.support.delivery import broadcast, content, each_once, members, statuses
from tests.support.fake_flood import FloodFake
from tests.support.fake_wechat import FakeWeixin, serve_fake
from tests.support.live_app import loopback

HOUR = 3600 * 1.02  # the hourly window with the limiter's 2% margin


class Clock:
    """Real time plus an offset the test moves forward; the worker's two clocks move together."""

    def __init__(self) -> None:
        self.offset = 0.0

    def now(self) -> datetime:
        return utcnow() + timedelta(seconds=self.offset)

    def ticks(self) -> float:
        return time.monotonic() + self.offset

    def jump(self, seconds: float) -> None:
        self.offset += seconds


@pytest.fixture
def wecom(db_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeWeixin]:
    """The fake WeCom API, and the settings `mianzi serve` would read: a fast channel, each member at
    most 50 messages an hour (WeCom's is 1000; fewer keeps the test small) and no interval."""
    loopback(monkeypatch)
    with serve_fake() as api:
        for name, value in {"WECOM_CORP_ID": "ww0123456789", "WECOM_SECRET": "corp", "WECOM_AGENT_ID": "1000002",
                            "WECOM_API_URL": api.base_url, "WECOM_RATE": "500", "WECOM_CHAT_INTERVAL": "0",
                            "WECOM_CHAT_PER_HOUR": "50"}.items():
            monkeypatch.setenv(f"MIANZI_{name}", value)
        get_settings.cache_clear()
        yield api


def wecom_worker(engine: Engine, clock: Clock) -> DeliveryWorker:
    """The worker as `mianzi serve` builds it from the settings, on the test's clock."""
    settings = get_settings()
    return DeliveryWorker(engine, push_senders(settings, engine), ceilings(settings), backoff=0.05,
                          concurrency=settings.delivery_concurrency, clock=clock.now, ticks=clock.ticks)


def queue_texts(engine: Engine, platform: str, rows: list[tuple[str, str]]) -> None:
    """Personal pushes (chat, text), in this order."""
    with session_scope(engine) as s:
        outbox.queue(s, [{"key": f"reply:{n}", "kind": "reply", "platform": platform, "chat_ref": chat,
                          "payload": {"text": text}} for n, (chat, text) in enumerate(rows)])


def waiting_rows(engine: Engine) -> list[tuple[str, datetime, int, str | None]]:
    """(chat, next_attempt_at, attempts, last_error) of the pending rows."""
    with Session(engine) as s:
        rows = s.execute(select(Outbox.chat_ref, Outbox.next_attempt_at, Outbox.attempts, Outbox.last_error)
                         .where(Outbox.status == "pending")).all()
    return [(chat, as_utc(at), attempts, error) for chat, at, attempts, error in rows]


def texts_to(api: FakeWeixin, user: str) -> list[str]:
    return [content(c) for c in api.accepted() if user in c.users]


def test_a_member_at_the_hourly_ceiling_does_not_hold_up_the_others(engine: Engine, wecom: FakeWeixin) -> None:
    """200 messages queued for one member (more than the 64 send slots), then one each for ten others:
    the ten go in the first run; the member's rows past the ceiling wait in the outbox for the hour."""
    capped, *others = members(engine, 11)
    queue_texts(engine, "wecom", [(capped, f"第{i}条") for i in range(200)] + [(o, "您好") for o in others])
    clock = Clock()
    per_run: list[int] = []

    async def go() -> None:
        worker = wecom_worker(engine, clock)
        try:
            start = clock.now()
            stats = await worker.drain()
            per_run.append(len(texts_to(wecom, capped)))
            assert all(texts_to(wecom, o) == ["您好"] for o in others)
            assert stats.deferred == 150 and stats.sent == 60
            waiting = waiting_rows(engine)
            assert len(waiting) == 150 and {chat for chat, *_ in waiting} == {capped}
            assert all(attempts == 0 and error is None for _, _, attempts, error in waiting)  # not a failed try
            assert min(at for _, at, _, _ in waiting) >= start + timedelta(seconds=3600)
            report = mianzi("deliveries", "report", "--json").json()
            assert report["channels"]["wecom"] == {"pending": 150, "sending": 0, "sent": 60, "failed": 0,
                                                   "blocked": 0, "undeliverable": 0}
            assert report["reasons"] == []
            while statuses(engine).get("pending"):
                clock.jump(HOUR + 60)
                await worker.drain()
                per_run.append(len(texts_to(wecom, capped)) - sum(per_run))
        finally:
            await worker.close()

    asyncio.run(go())
    assert per_run == [50, 50, 50, 50]  # the member's ceiling, each hour
    sent = texts_to(wecom, capped)
    assert sorted(sent) == sorted(f"第{i}条" for i in range(200))  # each once: nothing sent twice
    assert statuses(engine) == {"sent": 210}


def test_a_batch_leaves_out_the_member_at_the_ceiling(engine: Engine, wecom: FakeWeixin,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """A broadcast to 30 members, one of whom had their 3 messages this hour: the 29 others get it in one
    call now, the one later, in a call of their own — the batch does not wait an hour for them."""
    monkeypatch.setenv("MIANZI_WECOM_CHAT_PER_HOUR", "3")
    monkeypatch.setenv("MIANZI_WECOM_CHAT_INTERVAL", "0.3")
    get_settings.cache_clear()
    refs = members(engine, 30)
    capped = refs[0]
    queue_texts(engine, "wecom", [(capped, f"提醒{i}") for i in range(3)])
    bid = broadcast("今晚八点直播培训")
    clock = Clock()

    async def go() -> None:
        worker = wecom_worker(engine, clock)
        try:
            start = clock.now()
            await worker.drain()
            calls = [c for c in wecom.accepted() if content(c).startswith("📢")]
            assert len(calls) == 1 and sorted(calls[0].users) == sorted(refs[1:])
            assert sorted(texts_to(wecom, capped)) == ["提醒0", "提醒1", "提醒2"]
            ((chat, at, attempts, _error),) = waiting_rows(engine)
            assert chat == capped and attempts == 0 and at >= start + timedelta(seconds=3600)
            report = mianzi("deliveries", "report", str(bid), "--json").json()
            assert (report["channels"]["wecom"]["pending"], report["channels"]["wecom"]["sent"]) == (1, 29)
            clock.jump(HOUR + 60)
            await worker.drain()
        finally:
            await worker.close()

    asyncio.run(go())
    calls = [c for c in wecom.accepted() if content(c).startswith("📢")]
    assert len(calls) == 2 and calls[1].users == [capped] and each_once(calls, refs)
    assert statuses(engine) == {"sent": 33}


@pytest.fixture
def flood() -> Iterator[FloodFake]:
    with FloodFake(rate=1000, chat_interval=0.08) as f:
        yield f


def test_a_queue_for_one_chat_does_not_fill_the_send_slots(engine: Engine, flood: FloodFake) -> None:
    """60 messages for one Telegram chat (an interval of 0.1 s between two), then one each for ten
    others, with four send slots and at most 0.3 s of waiting in a slot: the chat's rows past that go
    back to the outbox, so the others are sent long before the chat's queue is through (waiting in the
    slots, they would come after its 50th); the chat's rows all arrive, each once, never too close."""
    others = [str(2000 + i) for i in range(10)]
    queue_texts(engine, "telegram", [("1000", f"第{i}条") for i in range(60)] + [(o, "您好") for o in others])
    push = TelegramPush("123:TEST", flood.base_url, timeout=2.0)
    worker = DeliveryWorker(engine, {"telegram": push}, {"telegram": Ceilings(200, 0.1, 20)}, concurrency=4,
                            max_wait=0.3, backoff=0.05)

    async def go() -> None:
        try:
            for _ in range(200):
                await worker.drain()
                if not statuses(engine).get("pending"):
                    break
                await asyncio.sleep(0.1)
        finally:
            await worker.close()

    asyncio.run(go())
    order = [chat for chat, _text, _at in flood.delivered]
    last_other = max(order.index(o) for o in others)
    assert order[:last_other].count("1000") < 20
    texts = [text for chat, text, _at in flood.delivered if chat == "1000"]
    assert Counter(texts) == Counter(f"第{i}条" for i in range(60))
    assert flood.refused["429"] == 0  # the interval held across the rows that came back
    assert worker.stats.deferred > 0 and statuses(engine) == {"sent": 70}
    with Session(engine) as s:
        assert set(s.execute(select(Outbox.attempts)).scalars()) == {0}  # deferring is not a failed try


def test_a_row_held_past_its_lease_is_not_taken_over_and_sent_twice(engine: Engine) -> None:
    """A worker with one send slot holds two rows while the first call hangs for 3 s, longer than the
    2 s lease; a second worker is running alongside. The first worker renews its leases, so the second
    never takes its rows over: every chat gets its message once."""
    chats = [str(1000 + i) for i in range(6)]
    queue_texts(engine, "telegram", [(chat, "您好") for chat in chats])
    with FloodFake(rate=1000) as api:
        api.slow, api.slow_seconds = {"1000": 1}, 3.0  # held 3 s, then a 504: retried later

        def worker(concurrency: int) -> DeliveryWorker:
            return DeliveryWorker(engine, {"telegram": TelegramPush("123:TEST", api.base_url, timeout=5.0)},
                                  {"telegram": Ceilings(200, 0.0, 20)}, concurrency=concurrency, backoff=0.05,
                                  lease=timedelta(seconds=2), send_time=0.5, idle_sleep=0.1)

        async def go() -> None:
            first, second = worker(1), worker(4)
            try:
                assert await first.step() == 2  # it holds 1000 (the slow one) and 1001, waiting for the slot
                stop = asyncio.Event()
                running = asyncio.create_task(second.run(stop))
                await first.drain()
                stop.set()
                await running
                while statuses(engine).get("pending"):  # 1000's retry after its backoff
                    await asyncio.sleep(0.1)
                    await first.drain()
                with Session(engine) as s:
                    holder = s.execute(select(Outbox.leased_by).where(Outbox.chat_ref == "1001")).scalar_one()
                assert holder == first.worker_id  # sent by the worker that held it all along
            finally:
                await first.close()
                await second.close()

        asyncio.run(go())
        assert api.refused["slow"] == 1
        assert sorted(api.per_chat().items()) == [(chat, 1) for chat in chats]
    assert statuses(engine) == {"sent": 6}
