"""The outbox and the delivery worker against a fake Bot API that enforces the ceilings."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import Engine, func, select
from sqlmodel import Session

from bot.channels.telegram.push import TelegramPush
from bot.delivery.limiter import Ceilings
from bot.delivery.worker import DeliveryWorker
from handlers import broadcasts
from models import leases, outbox
from models.db import session_scope
from models.recipients import recipients
from models.tables import ChatIdentity, Outbox, Partner
from models.values import utcnow
from tests.support import builders as b
from tests.support.cli_runner import MIANZI
from tests.support.delivery import drain, statuses
from tests.support.fake_flood import FloodFake

TOKEN = "123:TEST"


@pytest.fixture
def fake() -> Iterator[FloodFake]:
    with FloodFake(rate=20, chat_interval=0.5) as f:
        yield f


def people(engine: Engine, n: int, platform: str = "telegram") -> list[int]:
    """n bound partners with Telegram chats 1000…; returns their ids."""
    now = utcnow()
    with session_scope(engine) as s:
        b.partners(s, *({"code": f"P{i:04d}", "region": "华东" if i % 2 else "华南"} for i in range(n)))
        ids = [p.id for p in s.execute(select(Partner).order_by(Partner.id)).scalars()]
        for i, pid in enumerate(ids):
            s.add(ChatIdentity(partner_id=pid, platform=platform, user_ref=str(1000 + i), chat_ref=str(1000 + i),
                               bound_at=now, last_seen_at=now))
    return ids


def worker(engine: Engine, fake: FloodFake, rate: float = 18, **kw) -> DeliveryWorker:  # type: ignore[no-untyped-def]
    sender = TelegramPush(TOKEN, fake.base_url, timeout=kw.pop("timeout", 2.0))
    return DeliveryWorker(engine, {"telegram": sender}, {"telegram": Ceilings(rate, 0.6, 20)},
                          backoff=0.05, **kw)


def announce(engine: Engine, text: str = "今晚八点直播培训", segment: dict | None = None) -> int:
    now = utcnow()
    with session_scope(engine) as s:
        item, _ = broadcasts.draft(s, text, segment or {}, None, now, now)
        return broadcasts.confirm(s, item.id, now).id  # type: ignore[return-value,arg-type]


def test_every_recipient_once_within_the_ceilings(engine: Engine, fake: FloodFake) -> None:
    people(engine, 40)
    bid = announce(engine)
    assert announce_again_creates_nothing(engine, bid)
    drain(worker(engine, fake))
    per_chat = fake.per_chat()
    assert len(per_chat) == 40 and set(per_chat.values()) == {1}
    assert fake.refused["429"] == 0 and fake.max_in_any_second() <= 20
    assert statuses(engine) == {"sent": 40}
    text = fake.delivered[0][1]
    assert text.startswith("📢 今晚八点直播培训")


def announce_again_creates_nothing(engine: Engine, bid: int) -> bool:
    with session_scope(engine) as s:
        rows = s.execute(select(Outbox.key, Outbox.kind, Outbox.platform, Outbox.chat_ref, Outbox.payload)
                         .where(Outbox.batch_id == bid)).all()
        again = outbox.queue(s, [dict(r._mapping) for r in rows])
        broadcasts.confirm(s, bid, utcnow())  # confirming twice queues nothing more
        return again == 0 and s.execute(select(func.count()).select_from(Outbox)).scalar_one() == len(rows)


def test_faults_retry_block_and_fail(engine: Engine, fake: FloodFake) -> None:
    people(engine, 12)
    fake.blocked = {"1003"}
    fake.flaky = {"1004": 2, "1005": 10}  # 1005 never recovers within 3 attempts
    fake.slow, fake.slow_seconds = {"1006": 1}, 1.0
    announce(engine)
    drain(worker(engine, fake, timeout=0.3, max_attempts=3))
    per_chat = fake.per_chat()
    assert "1003" not in per_chat and "1005" not in per_chat
    assert all(per_chat[str(c)] == 1 for c in range(1000, 1012) if c not in (1003, 1005))
    assert statuses(engine) == {"sent": 10, "blocked": 1, "failed": 1}
    with Session(engine) as s:
        blocked = s.execute(select(ChatIdentity).where(ChatIdentity.chat_ref == "1003")).scalar_one()
        assert blocked.active is False
        failed = s.execute(select(Outbox).where(Outbox.status == "failed")).scalar_one()
        assert failed.attempts == 3 and failed.last_error.startswith("502")
    # a blocked account is not pushed to again
    announce(engine, "第二条通知")
    drain(worker(engine, fake))
    assert "1003" not in fake.per_chat() and fake.refused["blocked"] == 1


def test_429_slows_the_whole_channel_and_loses_nothing(engine: Engine) -> None:
    people(engine, 30)
    announce(engine)
    with FloodFake(rate=10) as strict:  # stricter than the worker's ceiling: it must back off
        drain(worker(engine, strict, rate=20))
        assert strict.refused["429"] >= 1
        assert len(strict.per_chat()) == 30 and set(strict.per_chat().values()) == {1}
    assert statuses(engine) == {"sent": 30}


def test_segment_and_most_recent_channel(engine: Engine, fake: FloodFake) -> None:
    ids = people(engine, 6)
    with session_scope(engine) as s:  # partner 0 is also on WeChat, used more recently
        s.add(ChatIdentity(partner_id=ids[0], platform="wechat", user_ref="oWX", chat_ref="oWX", bound_at=utcnow(),
                           last_seen_at=utcnow() + timedelta(seconds=5)))
        assert [r.platform for r in recipients(s, partner_ids=[ids[0]])] == ["wechat"]
    bid = announce(engine, "华东专场", {"region": "华东"})
    with Session(engine) as s:
        chats = set(s.execute(select(Outbox.chat_ref).where(Outbox.batch_id == bid)).scalars())
    assert chats == {"1001", "1003", "1005"}


def test_scheduled_broadcast_waits(engine: Engine, fake: FloodFake) -> None:
    people(engine, 3)
    now = utcnow()
    with session_scope(engine) as s:
        item, _ = broadcasts.draft(s, "明早九点", {}, None, now + timedelta(hours=1), now)
        broadcasts.confirm(s, item.id, now)  # type: ignore[arg-type]
    drain(worker(engine, fake))
    assert fake.delivered == [] and statuses(engine) == {"pending": 3}


def test_crashed_worker_lease_is_taken_over(engine: Engine, fake: FloodFake) -> None:
    people(engine, 5)
    announce(engine)
    with engine.begin() as conn:  # a worker claims everything, then dies without sending
        claimed = leases.claim(conn, "dead-worker", 100, timedelta(seconds=-1))
    assert len(claimed) == 5
    drain(worker(engine, fake))
    assert set(fake.per_chat().values()) == {1} and len(fake.per_chat()) == 5


@pytest.mark.skipif(not os.environ.get("MIANZI_TEST_POSTGRES_URL"), reason="needs PostgreSQL")
def test_two_drains_on_postgresql_one_delivers(db_url: str, engine: Engine) -> None:
    if not db_url.startswith("postgresql"):
        pytest.skip("two processes share the work on PostgreSQL")
    people(engine, 120)
    announce(engine)
    with FloodFake(rate=200) as quick:
        env = {**os.environ, "MIANZI_DATABASE_URL": db_url, "MIANZI_TELEGRAM_TOKEN": TOKEN,
               "MIANZI_TELEGRAM_API_URL": quick.base_url, "MIANZI_TELEGRAM_RATE": "150",
               "MIANZI_TELEGRAM_CHAT_INTERVAL": "0", "NO_PROXY": "127.0.0.1,localhost"}
        cmd = [*MIANZI, "deliveries", "drain"]
        procs = [subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(2)]
        outs = [p.communicate(timeout=120) for p in procs]
        assert all(p.returncode == 0 for p in procs), outs
        per_chat = quick.per_chat()
    assert len(per_chat) == 120 and set(per_chat.values()) == {1}
    assert statuses(engine) == {"sent": 120}
    import json

    drained = [json.loads(out.decode().strip().splitlines()[-1]) for out, _err in outs]
    assert sum(d["sent"] for d in drained) == 120
    # one deliverer per channel: the drain that won telegram's election sent everything (the rate ceiling is
    # counted in its memory), the other stood by; or, had the first finished first, the second found nothing
    assert sorted(d["sent"] for d in drained) == [0, 120]
    assert all(d["channels"] == ["telegram"] for d in drained)


def test_a_worker_that_loses_its_channel_gives_back_what_it_has_not_sent(db_url: str, engine: Engine) -> None:
    """The channel passes to another process (PostgreSQL): the old worker claims no more for it and hands
    back the rows it holds unsent; the new one sends them. Nobody gets a message twice or none."""
    if not db_url.startswith("postgresql"):
        pytest.skip("several deliverers only on PostgreSQL")
    import asyncio
    import time

    from models.leadership import Leadership, delivery_role

    people(engine, 30)
    announce(engine)
    role = delivery_role("telegram")
    old_lead, new_lead = Leadership(engine), Leadership(engine)
    with FloodFake(rate=200) as quick:
        old = worker(engine, quick, rate=4, concurrency=2, leadership=old_lead, election_every=0.1)
        new = worker(engine, quick, rate=100, leadership=new_lead, election_every=0.1)

        async def go() -> None:
            stop = asyncio.Event()
            running = asyncio.create_task(old.run(stop))
            deadline = time.monotonic() + 20
            while len(quick.delivered) < 3 and time.monotonic() < deadline:
                await asyncio.sleep(0.02)
            old.election_every = 3600.0  # from now on its elections are the test's: the next is an hour away
            assert await asyncio.to_thread(old.elect) == {"telegram"}
            await asyncio.to_thread(old_lead.resign, role)
            assert await asyncio.to_thread(new_lead.elect, [role]) == {role}  # another process took it
            assert await asyncio.to_thread(old.elect) == frozenset()  # its next election: lost
            await asyncio.sleep(1.0)  # the old worker's rows waiting for their slot come back
            stop.set()
            await running
            await new.drain()
            await old.close()
            await new.close()

        try:
            asyncio.run(go())
        finally:
            old_lead.close()
            new_lead.close()
        per_chat = quick.per_chat()
    assert len(per_chat) == 30 and set(per_chat.values()) == {1}
    assert old.stats.sent + new.stats.sent == 30 and 3 <= old.stats.sent < 30
    assert old.stats.deferred >= 1  # handed back, not sent by both
    assert statuses(engine) == {"sent": 30}
