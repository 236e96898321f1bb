"""Rate ceilings the delivery worker enforces on our side (DESIGN §5).

Sliding windows, not token buckets: a window never lets more than N calls into any interval of
its length, which is what platform flood controls count. A `pause` (after a 429 with
`retry_after`) holds back the whole channel, not just the message that was refused.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from dataclasses import dataclass


@dataclass(frozen=True)
class Ceilings:
    per_second: float  # calls per second for the whole channel
    chat_interval: float  # seconds between two messages to one private chat (0: no limit)
    group_per_minute: int  # messages per minute to one group chat (0: no limit)
    margin: float = 0.02  # windows are this fraction longer than nominal, for clock and network jitter


class Window:
    """At most `limit` events in any `length` seconds."""

    def __init__(self, limit: int, length: float) -> None:
        self.limit, self.length = max(limit, 1), length
        self.times: deque[float] = deque()

    def wait_time(self, now: float) -> float:
        while self.times and now - self.times[0] >= self.length:
            self.times.popleft()
        if len(self.times) < self.limit:
            return 0.0
        return self.length - (now - self.times[0])

    def take(self, now: float) -> None:
        self.times.append(now)


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
        self.groups: dict[str, Window] = {}
        self.paused_until = 0.0
        self.lock = asyncio.Lock()

    def pause(self, seconds: float) -> None:
        self.paused_until = max(self.paused_until, self.clock() + seconds)

    async def acquire(self, chat: str, is_group: bool) -> None:
        """Wait for the chat's own ceiling without holding others up, then queue (FIFO, under the
        lock) for the channel's ceiling and any pause."""
        while (wait := self._chat_wait(chat, is_group, self.clock())) > 0:
            await asyncio.sleep(wait)
        async with self.lock:
            while True:
                now = self.clock()
                wait = max(self.paused_until - now, self.overall.wait_time(now), self._chat_wait(chat, is_group, now))
                if wait <= 0:
                    self.overall.take(now)
                    self._chat_take(chat, is_group, now)
                    return
                await asyncio.sleep(wait)

    def _chat_wait(self, chat: str, is_group: bool, now: float) -> float:
        if is_group:
            if not self.ceilings.group_per_minute:
                return 0.0
            window = self.groups.get(chat)
            return window.wait_time(now) if window else 0.0
        if not self.ceilings.chat_interval:
            return 0.0
        return self.chat_next.get(chat, 0.0) - now

    def _chat_take(self, chat: str, is_group: bool, now: float) -> None:
        if is_group and self.ceilings.group_per_minute:
            window = self.groups.setdefault(chat, Window(self.ceilings.group_per_minute,
                                                         60.0 * (1 + self.ceilings.margin)))
            window.take(now)
        elif not is_group and self.ceilings.chat_interval:
            if len(self.chat_next) > 50_000:
                self.chat_next = {k: v for k, v in self.chat_next.items() if v > now}
            self.chat_next[chat] = now + self.ceilings.chat_interval * (1 + self.ceilings.margin)
