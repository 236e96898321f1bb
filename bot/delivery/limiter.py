"""Rate ceilings the delivery worker enforces on our side (DESIGN §5).

Sliding windows, not token buckets: a window never lets more than N calls into any interval of
its length, which is what platform flood controls count. A `pause` (after a 429 with
`retry_after`) holds back the whole channel, not just the message that was refused.

A message to a chat waits for that chat's own ceilings (interval, hourly count, group minute)
without the channel's lock, so a chat at its ceiling never holds others up; only then does it queue
(FIFO) for the channel's ceiling.

Waiting has a bound (`within`): a message that would go later than that — its chat's ceilings,
counting the messages already waiting here for the same chat, or a pause — takes nothing and gets a
`Deferred` saying when to come back (messages deferred for one chat are spread a chat interval
apart, so they do not all come back at once). The delivery worker gives such a row back to the
outbox for that time instead of holding a send slot while it sleeps (a member at the hourly
ceiling would otherwise hold one for up to an hour). In a batch, only the members that must wait
long are left out; the others go.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import Counter, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Deferred:
    """A message that would have to wait longer than allowed: nothing was taken for it; it may go about
    `seconds` from now (its chat's ceilings, the messages queued for the chat before it, a pause)."""

    seconds: float


@dataclass(frozen=True)
class Ceilings:
    per_second: float  # calls per second for the whole channel
    chat_interval: float  # seconds between two messages to one private chat (0: no limit)
    group_per_minute: int  # messages per minute to one group chat (0: no limit)
    chat_per_hour: int = 0  # messages per hour to one private chat (0: no limit; WeCom: 1000)
    margin: float = 0.02  # windows are this fraction longer than nominal, for clock and network jitter


class Window:
    """At most `limit` events in any `length` seconds."""

    def __init__(self, limit: int, length: float) -> None:
        self.limit, self.length = max(limit, 1), length
        self.times: deque[float] = deque()

    def wait_time(self, now: float, ahead: int = 0) -> float:
        """Until one more event fits, after `ahead` others not taken yet (those, when they fill the window
        themselves, hold it for at least a `length` from now: an estimate)."""
        while self.times and now - self.times[0] >= self.length:
            self.times.popleft()
        first = len(self.times) + ahead - self.limit  # the event that must leave the window first
        if first < 0:
            return 0.0
        if first >= len(self.times):
            return self.length
        return self.length - (now - self.times[first])

    def take(self, now: float) -> None:
        self.times.append(now)

    def idle(self, now: float) -> bool:
        """No event within the last `length`: the window holds nothing back and can be forgotten."""
        return not self.times or now - self.times[-1] >= self.length


class ChannelLimiter:
    """All the ceilings of one channel; `acquire` waits until a message to `chat` may go."""

    def __init__(self, ceilings: Ceilings, clock=time.monotonic) -> None:  # type: ignore[no-untyped-def]
        self.ceilings = ceilings
        self.clock = clock
        # N per second as a window of n per n/N seconds with n ≈ N/20: the same average, but bursts of
        # at most n, which keeps arrivals under the platform's count even when the network bunches
        # them a little (1,000/s becomes 50 per 50 ms; 30/s becomes 2 per 67 ms).
        n = max(1, round(ceilings.per_second / 20))
        self.overall = Window(n, n / ceilings.per_second * (1 + ceilings.margin))
        self.chat_next: dict[str, float] = {}
        self.hour_length = 3600.0 * (1 + ceilings.margin)
        self.chat_hours: dict[str, Window] = {}  # private chats with a message within the last hour
        self.hours_pruned = self.clock()  # windows idle for an hour are dropped every quarter hour
        self.groups: dict[str, Window] = {}
        self.paused_until = 0.0
        self.waiting: Counter[str] = Counter()  # per chat: messages waiting here for a slot
        self.promised: dict[str, float] = {}  # per chat: when the next message deferred may come back
        self.lock = asyncio.Lock()

    def pause(self, seconds: float) -> None:
        self.paused_until = max(self.paused_until, self.clock() + seconds)

    async def acquire(self, chat: str, is_group: bool, within: float = math.inf) -> Deferred | None:
        """Wait for the chat's own ceilings without holding others up, then queue (FIFO, under the
        lock) for the channel's ceiling and any pause. None once the message may go; a `Deferred`
        (nothing taken) when it would have to wait longer than `within` seconds."""
        now = self.clock()
        at = self._book(chat, is_group, now)
        if at - now > within:
            return self._defer(chat, is_group, at, now)
        self.waiting[chat] += 1
        try:
            if at > now:
                await asyncio.sleep(at - now)  # its turn: those queued before it for the chat go first
            return await self._acquire(lambda t: self._chat_wait(chat, is_group, t),
                                       lambda t: self._chat_take(chat, is_group, t), now + within)
        finally:
            self._done_waiting([chat])

    def _book(self, chat: str, is_group: bool, now: float) -> float:
        """When a new message to `chat` may go: its chat's ceilings let it, after the messages already
        waiting here for that chat, and any pause is over."""
        return max(now + self._chat_wait(chat, is_group, now, self.waiting[chat]), self.paused_until)

    def _done_waiting(self, chats: Sequence[str]) -> None:
        for chat in chats:
            self.waiting[chat] -= 1
            if not self.waiting[chat]:
                del self.waiting[chat]

    def _defer(self, chat: str, is_group: bool, at: float, now: float) -> Deferred:
        """A message that could go at `at`, past its bound: when to come back, after the ones deferred before
        it (a chat interval, or a group's minute share, apart) so that they do not all return at once."""
        at = max(at, self.promised.get(chat, 0.0))
        if is_group:
            step = 60.0 / self.ceilings.group_per_minute if self.ceilings.group_per_minute else 0.0
        else:
            step = self.ceilings.chat_interval
        if step:
            self.promised = _pruned(self.promised, now)
            self.promised[chat] = at + step * (1 + self.ceilings.margin)
        return Deferred(at - now)

    async def _acquire(self, own_wait: Callable[[float], float], take: Callable[[float], None],
                       deadline: float = math.inf) -> Deferred | None:
        """Take the slot once the chat's own ceilings (`own_wait`) and then the channel's allow it; a
        `Deferred` instead if the chat's wait or a pause would last past `deadline`."""
        while True:
            while (wait := own_wait(now := self.clock())) > 0:
                if now + wait > deadline:
                    return Deferred(wait)
                await asyncio.sleep(wait)
            async with self.lock:
                while True:
                    now = self.clock()
                    if own_wait(now) > 0:
                        # A call to the same chat took its slot meanwhile: wait for it again outside the
                        # lock (it may be an hour), not in the channel's queue.
                        break
                    if self.paused_until > max(now, deadline):
                        return Deferred(self.paused_until - now)
                    wait = max(self.paused_until - now, self.overall.wait_time(now))
                    if wait <= 0:
                        self.overall.take(now)
                        take(now)
                        return None
                    await asyncio.sleep(wait)

    def _chat_wait(self, chat: str, is_group: bool, now: float, ahead: int = 0) -> float:
        """Until the chat's own ceilings let one more message go, after `ahead` others still waiting for it."""
        c = self.ceilings
        if is_group:
            if not c.group_per_minute:
                return 0.0
            window = self.groups.get(chat)
            if window is None:
                return 60.0 * (1 + c.margin) if ahead >= c.group_per_minute else 0.0
            return window.wait_time(now, ahead)
        wait = 0.0
        if c.chat_interval:
            wait = self.chat_next.get(chat, 0.0) - now
            if ahead:
                wait = max(wait, 0.0) + ahead * c.chat_interval * (1 + c.margin)
        if c.chat_per_hour:
            if (hour := self.chat_hours.get(chat)) is not None:
                wait = max(wait, hour.wait_time(now, ahead))
            elif ahead >= c.chat_per_hour:
                wait = max(wait, self.hour_length)
        return wait

    def _chat_take(self, chat: str, is_group: bool, now: float) -> None:
        if is_group:
            if self.ceilings.group_per_minute:
                window = self.groups.setdefault(chat, Window(self.ceilings.group_per_minute,
                                                             60.0 * (1 + self.ceilings.margin)))
                window.take(now)
            return
        if self.ceilings.chat_interval:
            if len(self.chat_next) > 50_000:
                self.chat_next = {k: v for k, v in self.chat_next.items() if v > now}
            self.chat_next[chat] = now + self.ceilings.chat_interval * (1 + self.ceilings.margin)
        if self.ceilings.chat_per_hour:
            if now - self.hours_pruned >= self.hour_length / 4:
                # Memory stays bounded by the chats messaged within the last hour and a quarter; one
                # pass over them every quarter hour.
                self.chat_hours = {k: w for k, w in self.chat_hours.items() if not w.idle(now)}
                self.hours_pruned = now
            hour = self.chat_hours.get(chat)
            if hour is None:
                hour = self.chat_hours[chat] = Window(self.ceilings.chat_per_hour, self.hour_length)
            hour.take(now)


class BatchLimiter(ChannelLimiter):
    """A channel's ceilings for single rows (`acquire`) and for one call naming several members
    (WeCom's `message/send`)."""

    async def acquire_many(self, chats: Sequence[str], within: float = math.inf) -> dict[str, Deferred]:
        """One call to several private chats: the channel's ceiling counts the call, each member's own
        ceilings (interval and hourly count) count the member (WeCom drops silently what goes over its
        per-member limits). Members that would have to wait longer than `within` are left out (the
        answer: when each may come back); the call waits for the slowest of the others and they go."""
        now = self.clock()
        at = {chat: self._book(chat, False, now) for chat in chats}
        late = {chat: self._defer(chat, False, t, now) for chat, t in at.items() if t - now > within}
        going = [chat for chat in chats if chat not in late]
        if not going:
            return late
        self.waiting.update(going)
        start = max(at[chat] for chat in going)

        def members(t: float) -> float:
            return max(self._chat_wait(chat, False, t) for chat in going)

        def take(t: float) -> None:
            for chat in going:
                self._chat_take(chat, False, t)

        try:
            if start > now:
                await asyncio.sleep(start - now)
            deferred = await self._acquire(members, take, now + within)
        finally:
            self._done_waiting(going)
        return late if deferred is None else {**late, **dict.fromkeys(going, deferred)}


def _pruned(times: dict[str, float], now: float) -> dict[str, float]:
    """`times` without the entries already past, once it holds many (memory stays bounded)."""
    return {k: v for k, v in times.items() if v > now} if len(times) > 50_000 else times
