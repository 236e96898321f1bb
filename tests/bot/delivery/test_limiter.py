"""The delivery worker's own ceilings (bot/delivery/limiter.py), in virtual time: an event loop whose clock
jumps to the next timer instead of sleeping, so an hour of sends runs in well under a second and the
limiter's clock is the loop's."""

from __future__ import annotations

import asyncio
import selectors
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from bot.channels.registry import ceilings
from bot.delivery.limiter import BatchLimiter, Ceilings, ChannelLimiter, Deferred
from bot.settings import Settings

HOUR = 3600 * 1.02  # the hourly window with the default 2% margin
WECOM = Ceilings(20.0, 2.0, 20, chat_per_hour=1000)


class _Selector(selectors.DefaultSelector):
    def __init__(self, loop: VirtualLoop) -> None:
        super().__init__()
        self.loop = loop

    def select(self, timeout: float | None = None) -> list[Any]:
        if timeout is None:
            raise RuntimeError("deadlock: nothing scheduled and nothing ready")
        self.loop.now += max(timeout, 1e-9)  # time passes, as it does: a wait of 1e-13 must not spin
        return super().select(0)


class VirtualLoop(asyncio.SelectorEventLoop):
    def __init__(self) -> None:
        self.now = 0.0
        super().__init__(_Selector(self))

    def time(self) -> float:
        return self.now


def run(test: Callable[[VirtualLoop], Awaitable[None]]) -> None:
    loop = VirtualLoop()
    try:
        loop.run_until_complete(test(loop))
    finally:
        loop.close()


async def send(limiter: ChannelLimiter, loop: VirtualLoop, chat: str, is_group: bool = False) -> float:
    await limiter.acquire(chat, is_group)
    return loop.time()


async def send_many(limiter: BatchLimiter, loop: VirtualLoop, chats: list[str]) -> float:
    await limiter.acquire_many(chats)
    return loop.time()


def test_the_1001st_message_to_a_member_waits_until_the_first_is_an_hour_old() -> None:
    async def test(loop: VirtualLoop) -> None:
        limiter = BatchLimiter(WECOM, clock=loop.time)
        times = [await send(limiter, loop, "m1") for _ in range(1000)]
        assert times[1] - times[0] == pytest.approx(2.04)  # 30 a minute, with the margin
        assert times[-1] == pytest.approx(999 * 2.04)  # 1000 within 34 minutes: the interval allows them
        last = asyncio.create_task(send(limiter, loop, "m1"))
        await asyncio.sleep(1)
        start = loop.time()
        assert await send(limiter, loop, "m2") - start < 0.1  # another member goes at once
        assert not last.done()
        assert await last == pytest.approx(times[0] + HOUR)
        # and the window slides: the 1002nd waits for the second one, not another hour
        assert await send(limiter, loop, "m1") == pytest.approx(times[1] + HOUR)

    run(test)


def test_a_member_at_its_hourly_ceiling_holds_nobody_up() -> None:
    """Two calls to the same member both find room before either takes it: the loser waits an hour
    outside the channel's queue, so a call to another member queued behind it goes at once."""
    async def test(loop: VirtualLoop) -> None:
        limiter = ChannelLimiter(Ceilings(20.0, 0.0, 0, chat_per_hour=1000), clock=loop.time)
        first = await send(limiter, loop, "m1")
        for _ in range(998):
            await send(limiter, loop, "m1")
        start = loop.time()
        a, b, other = (asyncio.create_task(send(limiter, loop, chat)) for chat in ("m1", "m1", "m2"))
        assert await a - start < 0.1
        assert await other - start < 0.2
        assert not b.done()
        assert await b == pytest.approx(first + HOUR)

    run(test)


def test_a_batch_counts_each_member_it_names() -> None:
    async def test(loop: VirtualLoop) -> None:
        limiter = BatchLimiter(WECOM, clock=loop.time)
        first = await send_many(limiter, loop, ["m1", "m2"])
        for _ in range(999):
            await send_many(limiter, loop, ["m1", "m2"])
        assert loop.time() == pytest.approx(999 * 2.04)
        start = loop.time() + 2.04  # past the interval, m1 and m2 are only held by the hour
        await asyncio.sleep(2.04)
        assert await send(limiter, loop, "m3") - start < 0.1
        assert await send_many(limiter, loop, ["m3", "m4"]) == pytest.approx(start + 2.04)  # m3's interval
        single = asyncio.create_task(send(limiter, loop, "m1"))
        batch = asyncio.create_task(send_many(limiter, loop, ["m4", "m2", "m5"]))  # m2 holds the batch
        await asyncio.sleep(60)
        assert not single.done() and not batch.done()
        assert await send_many(limiter, loop, ["m4", "m5", "m6"]) - loop.time() < 0.1
        assert await single == pytest.approx(first + HOUR, abs=0.1)  # the two go one overall slot apart
        assert await batch == pytest.approx(first + HOUR, abs=0.1)

    run(test)


def test_hourly_windows_of_quiet_members_are_dropped() -> None:
    """100 new members a minute for four hours: the structure holds about the last hour and a quarter
    of them, not all 24,000, and never forgets one messaged within the hour."""
    async def test(loop: VirtualLoop) -> None:
        limiter = BatchLimiter(WECOM, clock=loop.time)
        sizes = []
        for minute in range(240):
            await send_many(limiter, loop, [f"m{minute}-{i}" for i in range(100)])
            if minute < 10:
                await send(limiter, loop, "busy")
            sizes.append(len(limiter.chat_hours))
            await asyncio.sleep(60 - 0.06)
        assert max(sizes) <= 100 * (HOUR * 1.25 / 60 + 2)  # about 7,700 members, never 24,000
        assert all(f"m{minute}-{i}" in limiter.chat_hours for minute in range(240 - 61, 240) for i in range(100))
        assert "busy" not in limiter.chat_hours and "m0-0" not in limiter.chat_hours

    run(test)


def test_pruning_keeps_a_member_whose_hour_is_not_over() -> None:
    """A window is dropped only when its newest event is an hour old, not its oldest."""
    async def test(loop: VirtualLoop) -> None:
        limiter = ChannelLimiter(Ceilings(20.0, 0.0, 0, chat_per_hour=3), clock=loop.time)
        await send(limiter, loop, "m1")
        await asyncio.sleep(2000)
        second = await send(limiter, loop, "m1")
        await send(limiter, loop, "m1")
        for minute in range(34):  # traffic to others prunes meanwhile, last after m1's first is an hour old
            await send(limiter, loop, f"other{minute}")
            await asyncio.sleep(60)
        assert HOUR < limiter.hours_pruned < loop.time() and "m1" in limiter.chat_hours
        start = loop.time()
        assert await send(limiter, loop, "m1") - start < 0.1  # the first has left the window
        assert await send(limiter, loop, "m1") == pytest.approx(second + HOUR)

    run(test)


def test_no_hourly_ceiling_keeps_no_windows() -> None:
    async def test(loop: VirtualLoop) -> None:
        limiter = ChannelLimiter(Ceilings(30.0, 1.0, 20), clock=loop.time)
        for _ in range(5):
            await send(limiter, loop, "c1")
        assert limiter.chat_hours == {}

    run(test)


def test_wecom_gets_the_hourly_ceiling_from_the_settings() -> None:
    got = ceilings(Settings(_env_file=None))  # type: ignore[call-arg]
    assert got["wecom"].chat_per_hour == 1000
    assert got["telegram"].chat_per_hour == 0 and got["wechat"].chat_per_hour == 0
    assert ceilings(Settings(_env_file=None, wecom_chat_per_hour=500))["wecom"].chat_per_hour == 500  # type: ignore[call-arg]


async def attempt(limiter: ChannelLimiter, loop: VirtualLoop, chat: str, within: float) -> float | Deferred:
    """When a message to `chat` went, or its `Deferred` when it would have had to wait over `within`."""
    deferred = await limiter.acquire(chat, False, within)
    return deferred if deferred is not None else loop.time()


def test_a_member_at_its_hourly_ceiling_is_deferred_not_waited_for() -> None:
    async def test(loop: VirtualLoop) -> None:
        limiter = BatchLimiter(Ceilings(20.0, 2.0, 20, chat_per_hour=3), clock=loop.time)
        first = await send(limiter, loop, "m1")
        await send(limiter, loop, "m1")
        await send(limiter, loop, "m1")
        start = loop.time()
        late = await attempt(limiter, loop, "m1", within=5)
        assert isinstance(late, Deferred) and late.seconds == pytest.approx(first + HOUR - start)
        assert loop.time() == start and len(limiter.chat_hours["m1"].times) == 3  # nothing waited, nothing taken
        assert await attempt(limiter, loop, "m2", within=5) - start < 0.1  # one overall slot
        assert limiter.waiting == {}

    run(test)


def test_messages_queued_for_one_chat_wait_up_to_the_bound_and_the_rest_are_spread() -> None:
    """Ten messages at once to a chat with a 1 s interval: the ones that can go within 3.5 s wait their
    turn; the others are deferred to their turns, an interval apart, not all to the same moment."""
    async def test(loop: VirtualLoop) -> None:
        limiter = ChannelLimiter(Ceilings(20.0, 1.0, 20), clock=loop.time)
        got = await asyncio.gather(*(attempt(limiter, loop, "c1", within=3.5) for _ in range(10)))
        went = [g for g in got if not isinstance(g, Deferred)]
        later = [g.seconds for g in got if isinstance(g, Deferred)]
        assert went == pytest.approx([0, 1.02, 2.04, 3.06], abs=1e-6)
        assert later == pytest.approx([4.08 + 1.02 * k for k in range(6)])

    run(test)


def test_a_batch_leaves_out_only_the_members_that_must_wait_long() -> None:
    async def test(loop: VirtualLoop) -> None:
        limiter = BatchLimiter(Ceilings(20.0, 0.5, 20, chat_per_hour=2), clock=loop.time)
        first = await send(limiter, loop, "m1")
        await send(limiter, loop, "m1")
        await send(limiter, loop, "m2")  # m2 must wait its interval, well within the bound
        start = loop.time()
        late = await limiter.acquire_many(["m1", "m2", "m3"], within=5)
        assert set(late) == {"m1"} and late["m1"].seconds == pytest.approx(first + HOUR - start)
        assert loop.time() - start == pytest.approx(0.51)  # the others went together after m2's interval
        assert len(limiter.chat_hours["m2"].times) == 2 and len(limiter.chat_hours["m3"].times) == 1
        assert len(limiter.chat_hours["m1"].times) == 2

    run(test)


def test_a_long_pause_defers_instead_of_holding_everyone() -> None:
    async def test(loop: VirtualLoop) -> None:
        limiter = ChannelLimiter(Ceilings(20.0, 1.0, 20), clock=loop.time)
        limiter.pause(30)
        late = await limiter.acquire("c1", False, within=5)
        assert late is not None and late.seconds == pytest.approx(30)
        assert await send(limiter, loop, "c1") == pytest.approx(30)  # without a bound it waits, as before

    run(test)


def test_a_group_takes_its_burst_and_the_rest_is_deferred_past_its_minute() -> None:
    async def test(loop: VirtualLoop) -> None:
        limiter = ChannelLimiter(Ceilings(20.0, 1.0, 20), clock=loop.time)
        got = await asyncio.gather(*(limiter.acquire("-100", True, within=5) for _ in range(23)))
        assert got[:20] == [None] * 20 and loop.time() < 1.1  # a group's minute allows a burst of 20
        later = [g.seconds for g in got[20:] if g is not None]
        assert later == pytest.approx([61.2, 61.2 + 3.06, 61.2 + 6.12])  # past the minute, 60/20 s apart

    run(test)
