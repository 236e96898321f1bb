"""The delivery worker: drains the outbox through the channel senders under each channel's ceilings.

Batches: a sender that can name many recipients in one call (`bot.channels.base.BatchSender`: WeCom's
`message/send`, up to 1000 members) gets the claimed rows of one content together. When a claim
holds such rows — of a broadcast, or the same content twice — the worker also claims the due rows
alike that follow them (`leases.claim_alike`: the rest of the broadcast, or within `lookahead`
ids), then cuts each content into calls of at most `batch_size` distinct chats. Rows of different
contents are never merged; every row keeps its own outcome. Ceilings stay honest: a batch takes one
slot of the channel's calls per second and, for each member it names, that member's own ceilings.

Waiting: a row waits for its chat's ceilings in a send slot for at most `max_wait` (5 s). One that
would wait longer (a member at WeCom's hourly ceiling, the tenth message queued for a chat with a 1 s
interval, a long 429 pause) is given back to the outbox — `pending`, `next_attempt_at` when its chat
may go, no attempt counted — and the slot takes other work; a batch leaves out only such members.

Leases: the worker renews the lease of every row it holds each quarter of the lease, so while it
lives no other worker takes them over, however long a row waits or a call takes. Should renewing
fail (the database away), a row starts its call only while at least `send_time` of the lease
renewed last is left.

One deliverer per channel: the ceilings are counted in this process's memory, so when several
`serve` processes share a PostgreSQL database only the leader of a channel's role
(`models.leadership`, `deliver:<platform>`) claims its rows; the others stand by and hold an
election every `election_every` seconds, and one of them takes the channel over when its leader
stops or its connection goes away. A channel just taken over waits `handover_pause` (a second, the
channel window's length) before its first call, so the old leader's last second and the new
leader's first never add up. A worker that loses a channel claims nothing more for it and gives
back the rows it had claimed and not yet started sending. Without a `Leadership` (tests,
benchmarks) the worker delivers for every channel it has a sender for.

Crash bound: a row is marked `sending` with a lease before it is sent and `sent` right after (in
batches flushed every `flush_interval`), only once its call succeeded. If the process dies in
between, the lease (at most `lease` after its last renewal) expires and the row is sent again, so a
restart can duplicate at most the rows this worker held at the moment of the kill: those being sent
(at most `concurrency` calls, each a single row or one batch) plus those sent but not yet recorded
(at most one flush interval's worth). Nothing is lost: unclaimed and unrecorded rows are sent later.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import socket
import time
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine

from bot.channels.base import BatchSender, OutboxItem, Sender, SendResult, batching
from bot.delivery.limiter import BatchLimiter, Ceilings, Deferred
from models import leases
from models.leadership import Leadership, delivery_role
from models.values import utcnow

log = logging.getLogger("mianzi.delivery")
HANDOVER_PAUSE = 1.02  # seconds a channel just taken over waits: its window's length, with the limiter's margin


@dataclass
class Stats:
    sent: int = 0
    retried: int = 0
    failed: int = 0
    blocked: int = 0
    undeliverable: int = 0
    throttled: int = 0  # 429 answers
    calls: int = 0  # platform calls made (a batch is one)
    deferred: int = 0  # rows given back to the outbox until their chat's ceilings let them go


@dataclass
class _Pending:
    """Outcomes waiting to be written, grouped so one UPDATE records many rows."""

    sent: list[int] = field(default_factory=list)
    other: list[tuple[int, SendResult, int]] = field(default_factory=list)  # id, result, attempts
    deferred: list[tuple[int, datetime]] = field(default_factory=list)  # id, when it may go


class DeliveryWorker:
    def __init__(self, engine: Engine, senders: Mapping[str, Sender], ceilings: Mapping[str, Ceilings], *,
                 worker_id: str | None = None, concurrency: int = 64, batch: int = 200,
                 lease: timedelta = timedelta(seconds=60), max_attempts: int = 5,
                 flush_interval: float = 0.05, idle_sleep: float = 0.5, backoff: float = 2.0,
                 lookahead: int = 5000, max_wait: float = 5.0, send_time: float = 20.0,
                 leadership: Leadership | None = None, election_every: float = 5.0,
                 handover_pause: float = HANDOVER_PAUSE,
                 clock: Callable[[], datetime] = utcnow, ticks: Callable[[], float] = time.monotonic) -> None:
        self.engine = engine
        self.senders = dict(senders)
        self.batchers = {p: b for p, s in self.senders.items() if (b := batching(s)) is not None}
        self.limiters = {p: BatchLimiter(ceilings[p], clock=ticks) for p in self.senders}
        self.lookahead = lookahead  # ids past a claim searched for rows alike, outside a broadcast
        self.worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}:{id(self):x}"
        self.concurrency, self.batch, self.lease = concurrency, batch, lease
        self.max_attempts, self.flush_interval, self.idle_sleep = max_attempts, flush_interval, idle_sleep
        self.backoff = backoff  # seconds before the first retry; doubles with each attempt
        self.max_wait = max_wait  # longest a row waits for its ceilings in a send slot; longer: deferred
        # A claimed row's call must start this long after the claim at the latest: the rest of the lease is
        # kept for the call itself (`send_time`, at most half the lease), so it cannot run out mid-call.
        self.start_within = lease.total_seconds() - min(send_time, lease.total_seconds() / 2)
        self.clock, self.ticks = clock, ticks  # the time for the database; the limiters' monotonic clock
        self.renew_every = lease.total_seconds() / 4  # the leases of the rows held are extended this often
        self._renew_tried = self._renewed = -math.inf  # ticks when a renewal began; when the last one that worked did
        self.leadership, self.election_every, self.handover_pause = leadership, election_every, handover_pause
        # the channels this worker delivers for, and when each may make its first call after being taken over
        self.leading: frozenset[str] = frozenset(self.senders) if leadership is None else frozenset()
        self._ready_at: dict[str, float] = {}
        self._next_election = -math.inf
        self.stats = Stats()
        self._pending = _Pending()
        self._slots = asyncio.Semaphore(concurrency)
        self._flushing = asyncio.Lock()
        self._inflight: set[asyncio.Task[None]] = set()

    async def run(self, stop: asyncio.Event) -> None:
        """Work until `stop` is set; then finish what is in flight and record it."""
        flusher = asyncio.create_task(self._flush_loop(stop))
        try:
            while not stop.is_set():
                await self._elect_when_due()
                got = await self.step()
                if not got:
                    try:
                        await asyncio.wait_for(stop.wait(), self.idle_sleep)
                    except TimeoutError:
                        pass
        finally:
            await self._wind_down(flusher, stop)

    async def drain(self, idle_rounds: int = 2) -> Stats:
        """Send until nothing is due (tests, benchmarks, the CLI); rows scheduled later stay queued."""
        flusher_stop = asyncio.Event()
        flusher = asyncio.create_task(self._flush_loop(flusher_stop))
        idle = 0
        try:
            await self._elect_when_due()
            if pause := max((at - self.ticks() for at in self._ready_at.values()), default=0.0):
                await asyncio.sleep(max(pause, 0.0))  # a channel just taken over: its handover pause
            while idle < idle_rounds:
                await self._elect_when_due()
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
            await self._wind_down(flusher, flusher_stop)
        return self.stats

    async def _wind_down(self, flusher: asyncio.Task[None], flusher_stop: asyncio.Event) -> None:
        """The end of `run` and `drain`: let the sends in flight finish, stop the flusher, record the rest."""
        if self._inflight:
            await asyncio.gather(*self._inflight, return_exceptions=True)
        flusher_stop.set()
        await flusher
        await self.flush()

    async def _elect_when_due(self) -> None:
        if self.leadership is not None and self.ticks() >= self._next_election:
            await asyncio.to_thread(self.elect)

    def elect(self) -> frozenset[str]:
        """Hold this worker's election: the channels it leads now (`leading`). A channel won waits its
        handover pause; one lost is claimed no more (its rows not yet sent are given back, `_admit`)."""
        if self.leadership is None:
            return self.leading
        roles = {delivery_role(p): p for p in sorted(self.senders)}
        won = frozenset(roles[r] for r in self.leadership.elect(roles))
        now = self.ticks()
        pause = self.handover_pause if self.leadership.shared else 0.0  # SQLite: one process, no handover
        for platform in sorted(won - self.leading):
            self._ready_at[platform] = now + pause
            log.info("delivery worker %s now delivers for %s", self.worker_id, platform)
        for platform in sorted(self.leading - won):
            self._ready_at.pop(platform, None)
            log.warning("delivery worker %s no longer delivers for %s", self.worker_id, platform)
        self.leading = won
        self._next_election = now + self.election_every
        return won

    def _claimable(self) -> list[str]:
        """The channels whose rows may be claimed now: led, and past their handover pause."""
        now = self.ticks()
        return sorted(p for p in self.leading if self._ready_at.get(p, -math.inf) <= now)

    async def step(self) -> int:
        """Claim a batch (when there is room in flight) and start sending it. Returns rows claimed."""
        room = self.concurrency * 2 - len(self._inflight)
        if room <= 0:
            await asyncio.wait(self._inflight, return_when=asyncio.FIRST_COMPLETED)
            return 1
        platforms = self._claimable()
        if not platforms:
            return 0
        start_by = self.ticks() + self.start_within
        items = await asyncio.to_thread(self._claim, min(room, self.batch), platforms)
        for unit in self._units(items):
            task = asyncio.create_task(self._deliver(unit, start_by))
            self._inflight.add(task)
            task.add_done_callback(self._inflight.discard)
        return len(items)

    def _claim(self, limit: int, platforms: list[str]) -> list[OutboxItem]:
        now = self.clock()
        with self.engine.begin() as conn:
            rows = leases.claim(conn, self.worker_id, limit, self.lease, now=now, platforms=platforms)
            for platform, sender in self.batchers.items():
                if platform in platforms:
                    rows += self._claim_alike(conn, platform, sender, rows, now)
        return [_item(row) for row in rows]

    def _claim_alike(self, conn, platform: str, sender: BatchSender, rows: list[Any], now: datetime) -> list[Any]:  # type: ignore[no-untyped-def]
        """The due rows that could share a call with claimed ones: the rest of a broadcast whose row was
        claimed, or of a content claimed twice (within `lookahead` ids). A lone personal row looks no
        further: nothing would share its call, and the search is not free."""
        groups: dict[Hashable, list[Any]] = {}
        for row in rows:
            if row.platform == platform and (key := sender.batch_key(_item(row))) is not None:
                groups.setdefault(key, []).append(row)
        wanted = [g for g in groups.values() if len(g) > 1 or g[0].batch_id is not None]
        seeds = [row.id for g in wanted for row in g]
        limit = min(len(wanted), 2) * sender.batch_size - len(seeds)
        if not wanted or limit <= 0:
            return []
        batches = sorted({row.batch_id for g in wanted for row in g if row.batch_id is not None})
        repeated = [row.id for g in wanted if len(g) > 1 for row in g]
        return leases.claim_alike(conn, self.worker_id, platform, seeds, limit, self.lease, now=now,
                                  batches=batches, until_id=max(repeated) + self.lookahead if repeated else None)

    def _units(self, items: list[OutboxItem]) -> list[list[OutboxItem]]:
        """The calls to make, in claim order: a row alone, or rows of one content to distinct chats, at
        most the sender's `batch_size` (a chat named twice in one call would get one message for two rows)."""
        units: list[list[OutboxItem]] = []
        filling: dict[tuple[str, Hashable], list[tuple[list[OutboxItem], set[str]]]] = {}
        for item in sorted(items, key=lambda i: i.id):
            sender = self.batchers.get(item.platform)
            key = sender.batch_key(item) if sender is not None else None
            if sender is None or key is None:
                units.append([item])
                continue
            chunks = filling.setdefault((item.platform, key), [])
            for chunk, chats in chunks:
                if len(chunk) < sender.batch_size and item.chat_ref not in chats:
                    break
            else:
                chunk, chats = [], set()
                chunks.append((chunk, chats))
                units.append(chunk)
            chunk.append(item)
            chats.add(item.chat_ref)
        return units

    async def _deliver(self, items: list[OutboxItem], start_by: float) -> None:
        """One call: a row, or a batch of rows of one content; each row's outcome recorded on its own.
        Rows whose ceilings would keep them waiting long are deferred instead (`_admit`)."""
        first = items[0]
        sender, limiter = self.senders[first.platform], self.limiters[first.platform]
        async with self._slots:
            items = await self._admit(items, limiter, start_by)
            if not items:
                return
            first = items[0]
            try:
                if len(items) == 1:
                    results = [await sender.send(first)]
                else:
                    results = await self.batchers[first.platform].send_batch(items)
                    if len(results) != len(items):
                        raise RuntimeError(f"{len(results)} results for {len(items)} rows")
            except Exception as exc:  # a sender bug must not stop the worker
                log.exception("sender %s failed on outbox rows %s…", first.platform, first.id)
                results = [SendResult("retry", error=f"internal: {type(exc).__name__}")] * len(items)
        self.stats.calls += 1
        pause = max((r.retry_after or 0.0 for r in results), default=0.0)
        if pause:
            limiter.pause(pause)
            self.stats.throttled += 1
        blocked = []
        for item, result in zip(items, results, strict=True):
            if result.outcome == "sent":
                self.stats.sent += 1
                self._pending.sent.append(item.id)
            else:
                self._pending.other.append((item.id, result, item.attempts))
                if result.outcome == "blocked" and item.identity_id is not None:
                    blocked.append(item.identity_id)
        if blocked:
            await asyncio.to_thread(self._deactivate, blocked)

    async def _admit(self, items: list[OutboxItem], limiter: BatchLimiter, start_by: float) -> list[OutboxItem]:
        """Take the ceilings' slots for the rows of one call; the rows that would have to wait longer than
        `max_wait` (or past `start_by`, when their lease would run short) are deferred, not waited for:
        a send slot is never held for long by a chat at its ceiling. Returns the rows that may go now."""
        if items[0].platform not in self.leading:
            return self._give_back(items)
        within = min(self.max_wait, self._start_by(start_by) - self.ticks())
        if len(items) == 1:
            late = await limiter.acquire(items[0].chat_ref, items[0].is_group, within)
            deferred = {items[0].chat_ref: late} if late is not None else {}
        else:
            deferred = await limiter.acquire_many([i.chat_ref for i in items], within)
        if items[0].platform not in self.leading:  # lost while it waited: not ours to send any more
            return self._give_back(items)
        if self.ticks() > self._start_by(start_by):  # it queued too long: the lease could run out mid-call
            deferred = {i.chat_ref: deferred.get(i.chat_ref, Deferred(0.0)) for i in items}
        now = self.clock()
        for item in items:
            if (late := deferred.get(item.chat_ref)) is not None:
                self.stats.deferred += 1
                self._pending.deferred.append((item.id, _tenth_up(now + timedelta(seconds=late.seconds))))
        return [i for i in items if i.chat_ref not in deferred]

    def _give_back(self, items: list[OutboxItem]) -> list[OutboxItem]:
        """The rows of a channel another process delivers for now: back to the outbox, due at once, for
        it to take (no attempt counted). Returns none to send."""
        now = self.clock()
        self.stats.deferred += len(items)
        self._pending.deferred.extend((item.id, now) for item in items)
        return []

    def _start_by(self, claimed: float) -> float:
        """When a row must start its call at the latest: `start_within` after its claim (`claimed` is that
        deadline) or after the last renewal of this worker's leases, whichever is later."""
        return max(claimed, self._renewed + self.start_within)

    def _deactivate(self, identity_ids: list[int]) -> None:
        with self.engine.begin() as conn:
            for identity_id in identity_ids:
                leases.deactivate_identity(conn, identity_id)

    async def _flush_loop(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), self.flush_interval)
            except TimeoutError:
                pass
            await self.flush()
            await self._renew()

    async def _renew(self) -> None:
        """Extend the lease of every row this worker holds (waiting for a slot, being sent, sent but not
        yet recorded), every `renew_every`: while the worker lives, no other takes its rows over."""
        started = self.ticks()
        if started - self._renew_tried < self.renew_every:
            return
        self._renew_tried = started
        try:
            await asyncio.to_thread(self._extend, self.clock() + self.lease)
        except Exception:  # the database is away: rows then start their calls only within their lease
            log.exception("renewing the leases of worker %s failed", self.worker_id)
            return
        self._renewed = started

    def _extend(self, lease_until: datetime) -> None:
        with self.engine.begin() as conn:
            leases.renew(conn, self.worker_id, lease_until)

    async def flush(self) -> None:
        """Record the outcomes gathered so far; returns once they are written, also those another flush
        (the periodic one) had taken (so `drain` never stops while a retry is still being recorded)."""
        async with self._flushing:
            pending, self._pending = self._pending, _Pending()
            if pending.sent or pending.other or pending.deferred:
                await asyncio.to_thread(self._record, pending)

    def _record(self, pending: _Pending) -> None:
        """Write the outcomes: rows with the same new values (all those sent; a batch retried or blocked
        alike) in one UPDATE."""
        now = self.clock()
        groups: dict[tuple[tuple[str, Any], ...], list[int]] = {}
        if pending.sent:
            groups[(("status", "sent"), ("sent_at", now), ("last_error", None))] = pending.sent
        for row_id, result, attempts in pending.other:
            groups.setdefault(tuple(sorted(self._outcome(result, attempts, now).items())), []).append(row_id)
        for row_id, at in pending.deferred:  # back in the queue as it was: no attempt counted, no backoff
            groups.setdefault((("next_attempt_at", at), ("status", "pending")), []).append(row_id)
        with self.engine.begin() as conn:
            for values, ids in groups.items():
                leases.mark(conn, ids, self.worker_id, **dict(values))

    def _outcome(self, result: SendResult, attempts: int, now: datetime) -> dict[str, Any]:
        """The new values of a row that was not sent (and the count of it in `stats`)."""
        error = (result.error or result.outcome)[:500]
        if result.outcome == "retry":
            if result.retry_after:  # the platform's flood control: not the message's fault
                self.stats.retried += 1
                return {"status": "pending", "last_error": error,
                        "next_attempt_at": now + timedelta(seconds=result.retry_after)}
            attempts += 1
            if attempts >= self.max_attempts:
                self.stats.failed += 1
                return {"status": "failed", "attempts": attempts, "last_error": error}
            backoff = timedelta(seconds=min(self.backoff * 2 ** (attempts - 1), 300))
            self.stats.retried += 1
            return {"status": "pending", "attempts": attempts, "last_error": error, "next_attempt_at": now + backoff}
        counter = {"failed": "failed", "blocked": "blocked", "undeliverable": "undeliverable"}[result.outcome]
        setattr(self.stats, counter, getattr(self.stats, counter) + 1)
        return {"status": result.outcome, "last_error": error, "attempts": attempts + 1}

    async def close(self) -> None:
        for sender in self.senders.values():
            await sender.close()


def _tenth_up(at: datetime) -> datetime:
    """`at` rounded up to a tenth of a second: never earlier, and the rows of a batch's members deferred
    to the same moment share one UPDATE (a whole second would bring a chat's rows spread a fraction of
    a second apart back together, only to defer most of them again)."""
    extra = -at.microsecond % 100_000
    return at + timedelta(microseconds=extra)


def _item(row) -> OutboxItem:  # type: ignore[no-untyped-def]
    """What a sender needs of a claimed outbox row."""
    return OutboxItem(id=row.id, platform=row.platform, chat_ref=row.chat_ref, is_group=row.is_group,
                      payload=row.payload or {}, identity_id=row.identity_id, partner_id=row.partner_id,
                      attempts=row.attempts)


def release(engine: Engine, worker_id: str) -> None:
    """Give back rows a stopping worker still holds, so they need not wait for the lease to run out."""
    with engine.begin() as conn:
        leases.release(conn, worker=worker_id, now=utcnow())
