"""The delivery worker: drains the outbox through the channel senders under each channel's ceilings.

Crash bound: a row is marked `sending` with a lease before it is sent and `sent` right after (in
batches flushed every `flush_interval`). If the process dies in between, the lease expires and the
row is sent again, so a restart can duplicate at most the rows this worker held at the moment of
the kill: those being sent (at most `concurrency`) plus those sent but not yet recorded (at most
one flush interval's worth). Nothing is lost: unclaimed and unrecorded rows are sent later.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import Engine, case, update

from bot.ratelimit import Ceilings, ChannelLimiter
from bot.senders import OutboxItem, Sender, SendResult
from models import outbox
from models.tables import Outbox
from models.values import utcnow

log = logging.getLogger("mianzi.delivery")


@dataclass
class Stats:
    sent: int = 0
    retried: int = 0
    failed: int = 0
    blocked: int = 0
    undeliverable: int = 0
    throttled: int = 0  # 429 answers


@dataclass
class _Pending:
    """Outcomes waiting to be written, grouped so one UPDATE records many rows."""

    sent: list[int] = field(default_factory=list)
    other: list[tuple[int, SendResult, int]] = field(default_factory=list)  # id, result, attempts


class DeliveryWorker:
    def __init__(self, engine: Engine, senders: Mapping[str, Sender], ceilings: Mapping[str, Ceilings], *,
                 worker_id: str | None = None, concurrency: int = 64, batch: int = 200,
                 lease: timedelta = timedelta(seconds=60), max_attempts: int = 5,
                 flush_interval: float = 0.05, idle_sleep: float = 0.5, backoff: float = 2.0,
                 clock: Callable[[], datetime] = utcnow) -> None:
        self.engine = engine
        self.senders = dict(senders)
        self.limiters = {p: ChannelLimiter(ceilings[p]) for p in self.senders}
        self.worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}:{id(self):x}"
        self.concurrency, self.batch, self.lease = concurrency, batch, lease
        self.max_attempts, self.flush_interval, self.idle_sleep = max_attempts, flush_interval, idle_sleep
        self.backoff = backoff  # seconds before the first retry; doubles with each attempt
        self.clock = clock
        self.stats = Stats()
        self._pending = _Pending()
        self._slots = asyncio.Semaphore(concurrency)
        self._inflight: set[asyncio.Task] = set()

    async def run(self, stop: asyncio.Event) -> None:
        """Work until `stop` is set; then finish what is in flight and record it."""
        flusher = asyncio.create_task(self._flush_loop(stop))
        try:
            while not stop.is_set():
                got = await self.step()
                if not got:
                    try:
                        await asyncio.wait_for(stop.wait(), self.idle_sleep)
                    except TimeoutError:
                        pass
        finally:
            if self._inflight:
                await asyncio.gather(*self._inflight, return_exceptions=True)
            stop.set()
            await flusher
            await self.flush()

    async def drain(self, idle_rounds: int = 2) -> Stats:
        """Send until nothing is due (tests, benchmarks, the CLI); rows scheduled later stay queued."""
        flusher_stop = asyncio.Event()
        flusher = asyncio.create_task(self._flush_loop(flusher_stop))
        idle = 0
        try:
            while idle < idle_rounds:
                got = await self.step()
                if got:
                    idle = 0
                    continue
                if self._inflight:
                    await asyncio.wait(self._inflight, return_when=asyncio.FIRST_COMPLETED)
                    continue
                await self.flush()
                idle += 1
                await asyncio.sleep(0.05)
        finally:
            if self._inflight:
                await asyncio.gather(*self._inflight, return_exceptions=True)
            flusher_stop.set()
            await flusher
            await self.flush()
        return self.stats

    async def step(self) -> int:
        """Claim a batch (when there is room in flight) and start sending it. Returns rows claimed."""
        room = self.concurrency * 2 - len(self._inflight)
        if room <= 0:
            await asyncio.wait(self._inflight, return_when=asyncio.FIRST_COMPLETED)
            return 1
        rows = await asyncio.to_thread(self._claim, min(room, self.batch))
        for row in rows:
            item = OutboxItem(id=row.id, platform=row.platform, chat_ref=row.chat_ref, is_group=row.is_group,
                              payload=row.payload or {}, identity_id=row.identity_id, partner_id=row.partner_id,
                              attempts=row.attempts)
            task = asyncio.create_task(self._deliver(item))
            self._inflight.add(task)
            task.add_done_callback(self._inflight.discard)
        return len(rows)

    def _claim(self, limit: int) -> list:
        with self.engine.begin() as conn:
            return outbox.claim(conn, self.worker_id, limit, self.lease, now=self.clock(),
                                platforms=list(self.senders))

    async def _deliver(self, item: OutboxItem) -> None:
        sender = self.senders[item.platform]
        limiter = self.limiters[item.platform]
        async with self._slots:
            await limiter.acquire(item.chat_ref, item.is_group)
            try:
                result = await sender.send(item)
            except Exception as exc:  # a sender bug must not stop the worker
                log.exception("sender %s failed on outbox row %s", item.platform, item.id)
                result = SendResult("retry", error=f"internal: {type(exc).__name__}")
        if result.retry_after:
            limiter.pause(result.retry_after)
            self.stats.throttled += 1
        if result.outcome == "sent":
            self.stats.sent += 1
            self._pending.sent.append(item.id)
        else:
            self._pending.other.append((item.id, result, item.attempts))
            if result.outcome == "blocked" and item.identity_id is not None:
                await asyncio.to_thread(self._deactivate, item.identity_id)

    def _deactivate(self, identity_id: int) -> None:
        with self.engine.begin() as conn:
            outbox.deactivate_identity(conn, identity_id)

    async def _flush_loop(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), self.flush_interval)
            except TimeoutError:
                pass
            await self.flush()

    async def flush(self) -> None:
        pending, self._pending = self._pending, _Pending()
        if pending.sent or pending.other:
            await asyncio.to_thread(self._record, pending)

    def _record(self, pending: _Pending) -> None:
        now = self.clock()
        with self.engine.begin() as conn:
            if pending.sent:
                outbox.mark(conn, pending.sent, self.worker_id, status="sent", sent_at=now, last_error=None)
            for row_id, result, attempts in pending.other:
                self._record_one(conn, row_id, result, attempts, now)

    def _record_one(self, conn, row_id: int, result: SendResult, attempts: int, now) -> None:  # type: ignore[no-untyped-def]
        error = (result.error or result.outcome)[:500]
        if result.outcome == "retry":
            if result.retry_after:  # the platform's flood control: not the message's fault
                outbox.mark(conn, [row_id], self.worker_id, status="pending", last_error=error,
                            next_attempt_at=now + timedelta(seconds=result.retry_after))
                self.stats.retried += 1
                return
            attempts += 1
            if attempts >= self.max_attempts:
                outbox.mark(conn, [row_id], self.worker_id, status="failed", attempts=attempts, last_error=error)
                self.stats.failed += 1
                return
            backoff = timedelta(seconds=min(self.backoff * 2 ** (attempts - 1), 300))
            outbox.mark(conn, [row_id], self.worker_id, status="pending", attempts=attempts, last_error=error,
                        next_attempt_at=now + backoff)
            self.stats.retried += 1
            return
        outbox.mark(conn, [row_id], self.worker_id, status=result.outcome, last_error=error,
                    attempts=attempts + 1)
        counter = {"failed": "failed", "blocked": "blocked", "undeliverable": "undeliverable"}[result.outcome]
        setattr(self.stats, counter, getattr(self.stats, counter) + 1)

    async def close(self) -> None:
        for sender in self.senders.values():
            await sender.close()


def release(engine: Engine, worker_id: str) -> None:
    """Give back rows a stopping worker still holds, so they need not wait for the lease to run out."""
    with engine.begin() as conn:
        conn.execute(update(Outbox).where(Outbox.leased_by == worker_id, Outbox.status == "sending")
                     .values(status="pending", lease_until=None,
                             next_attempt_at=case((Outbox.next_attempt_at.is_(None), utcnow()),
                                                  else_=Outbox.next_attempt_at)))
