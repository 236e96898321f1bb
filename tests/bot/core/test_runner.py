"""`CoreProcess` on its own: answers, errors and many calls at once cross the pipe intact."""

from __future__ import annotations

import asyncio
import multiprocessing

import pytest
from sqlalchemy import Engine, select, text

from bot.core.runner import CoreProcess, groupable


def _count_partners(engine: Engine, label: str) -> tuple[str, int]:
    with engine.connect() as conn:
        return label, conn.execute(text("SELECT count(*) FROM partner")).scalar_one()


def _fail(engine: Engine, message: str) -> None:
    raise LookupError(message)


def test_answers_errors_and_many_calls_in_flight(db_url: str) -> None:
    before = set(multiprocessing.active_children())
    core = CoreProcess(db_url)

    async def scenario() -> None:
        await core.start()
        assert await core.call(_count_partners, "x") == ("x", 0)
        with pytest.raises(LookupError, match="no such thing"):  # the child's error, re-raised here
            await core.call(_fail, "no such thing")
        answers = await asyncio.gather(*(core.call(_count_partners, str(i)) for i in range(200)))
        assert answers == [(str(i), 0) for i in range(200)]  # each answer to its own call

    try:
        asyncio.run(scenario())
        assert len([p for p in multiprocessing.active_children() if p not in before]) == 1
    finally:
        core.stop()
    assert [p for p in multiprocessing.active_children() if p not in before] == []


def _sessions(engine: Engine) -> tuple[int, int, int, int]:
    """Three sessions in the child, the second failing: their DB-API connections and what was kept."""
    from models.db import session_scope

    def one(code: str, fail: bool = False) -> int:
        with session_scope(engine) as session:
            session.connection().execute(text("INSERT INTO team (code, name) VALUES (:c, :c)"), {"c": code})
            found = id(session.connection().connection.dbapi_connection)
            if fail:
                raise LookupError(code)
            return found

    first = one("T1")
    try:
        one("T2", fail=True)
    except LookupError:
        pass
    last = one("T3")
    with session_scope(engine) as session:
        kept = session.connection().execute(text("SELECT count(*) FROM team")).scalar_one()
        third = id(session.connection().connection.dbapi_connection)
    return first, last, third, kept


def test_the_child_holds_one_connection_on_sqlite(db_url: str) -> None:
    """On SQLite every session of the core process runs on the one connection it holds (no pool
    checkout per message); a failed one is rolled back all the same. Elsewhere: the pool."""
    core = CoreProcess(db_url)

    async def scenario() -> tuple[int, int, int, int]:
        await core.start()
        return await core.call(_sessions)

    try:
        first, last, third, kept = asyncio.run(scenario())
    finally:
        core.stop()
    assert kept == 2  # T1 and T3; T2 was rolled back
    if db_url.startswith("sqlite"):
        assert first == last == third


def test_no_unchecked_transaction_on_a_held_connection(engine: Engine) -> None:
    """`begin_unchecked` turns foreign-key checks off until the connection is checked in; a held
    connection never is, so it is refused there (the write runs checked) and allowed again after."""
    from models.db import begin_unchecked, hold_connection, release_connection, session_scope

    if not hold_connection(engine):
        return  # PostgreSQL: nothing is held
    try:
        with session_scope(engine) as session:
            assert not begin_unchecked(session.connection())
            assert session.connection().execute(text("PRAGMA foreign_keys")).scalar_one() == 1
    finally:
        release_connection(engine)
    with session_scope(engine) as session:
        assert begin_unchecked(session.connection())


def test_a_session_inside_another_keeps_its_own_connection(engine: Engine) -> None:
    """A `session_scope` opened while the held connection is in a transaction gets a pooled one, as
    before: it commits on its own and does not touch the outer one's transaction."""
    from models.db import hold_connection, release_connection, session_scope

    if not hold_connection(engine):
        return
    try:
        with session_scope(engine) as outer:
            outer.connection().execute(text("INSERT INTO team (code, name) VALUES ('T1', 'T1')"))
            held = outer.connection().connection.dbapi_connection
            with session_scope(engine) as inner:  # reads only: SQLite has one writer
                assert inner.connection().connection.dbapi_connection is not held
                assert inner.connection().execute(text("SELECT count(*) FROM team")).scalar_one() == 0
            assert outer.connection().execute(text("SELECT count(*) FROM team")).scalar_one() == 1
        with session_scope(engine) as again:
            assert again.connection().connection.dbapi_connection is held
            assert again.connection().execute(text("SELECT count(*) FROM team")).scalar_one() == 1
    finally:
        release_connection(engine)


def test_the_session_reused_on_a_held_connection_starts_empty_each_time(engine: Engine) -> None:
    """On the held connection one session serves one `session_scope` after another: each starts with
    no object and no transaction of the one before, a failed one keeps nothing, and a scope opened
    inside another (before the outer one wrote) gets a session of its own."""
    from models.db import hold_connection, release_connection, session_scope
    from models.tables import Team

    if not hold_connection(engine):
        return
    try:
        with session_scope(engine) as first:
            first.add(Team(code="T1", name="T1"))
        with session_scope(engine) as second:
            assert list(second.identity_map.values()) == []
            team = second.execute(select(Team)).scalar_one()
            team.name = "changed"
            with pytest.raises(RuntimeError), session_scope(engine) as failing:
                assert failing is not second  # nested: its own session
                raise RuntimeError
        with pytest.raises(RuntimeError), session_scope(engine) as third:
            third.add(Team(code="T2", name="T2"))
            third.flush()
            raise RuntimeError
        with session_scope(engine) as fourth:
            assert fourth is first  # the same session, reused
            assert [(t.code, t.name) for t in fourth.execute(select(Team)).scalars()] == [("T1", "changed")]
    finally:
        release_connection(engine)


def _seen(engine: Engine, config: object, other: object) -> tuple[object, int, object]:
    """The kept value as the child has it, its object's id there (the same one call after call), and
    a value passed as usual."""
    import os

    return config, id(config) ^ os.getpid(), other


def _die(engine: Engine) -> None:
    import os

    os._exit(3)


def test_a_kept_value_crosses_once_and_again_to_a_new_child(db_url: str) -> None:
    """`keep`: calls passing the kept object get it in the child, the same object there each time
    (sent once, then known by its key), beside their other arguments; a child started after the
    first one died gets it again."""
    from concurrent.futures.process import BrokenProcessPool

    from handlers.types import ChatConfig

    core = CoreProcess(db_url)
    config = core.keep(ChatConfig(bot_username="KeptBot", max_text=7))

    async def scenario() -> list[tuple[object, int, object]]:
        await core.start()
        found = [await core.call(_seen, config, i) for i in range(3)]
        with pytest.raises(BrokenProcessPool):
            await core.call(_die)
        found.append(await core.call(_seen, config, "after"))  # a new child
        found.append(await core.call(_seen, ChatConfig(bot_username="Other"), "not kept"))
        return found

    try:
        found = asyncio.run(scenario())
    finally:
        core.stop()
    assert [(c, o) for c, _, o in found[:4]] == [(config, 0), (config, 1), (config, 2), (config, "after")]
    assert found[0][1] == found[1][1] == found[2][1] != found[3][1]  # one object in each child
    assert found[4][0] == ChatConfig(bot_username="Other")


def _slow(engine: Engine, seconds: float, label: object) -> object:
    import time

    time.sleep(seconds)
    return label


def test_calls_from_the_home_loop_and_from_another_thread_at_once(db_url: str) -> None:
    """The loop that called first reads its answers from a pipe of its own; calls from another
    loop (another thread) meanwhile go by the thread's pipe. Each answer reaches its own call, a
    kept value crosses on each pipe, and a call its caller gave up on (cancelled) leaves the
    answers after it in place."""
    import threading

    from handlers.types import ChatConfig

    core = CoreProcess(db_url)
    config = core.keep(ChatConfig(bot_username="KeptBot"))
    other: list[object] = []

    def elsewhere() -> None:
        async def calls() -> list[object]:
            return list(await asyncio.gather(*(core.call(_seen, config, f"t{i}") for i in range(50))))

        other.extend(asyncio.run(calls()))

    async def scenario() -> list[object]:
        await core.start()
        child = core._current()
        assert child._home is asyncio.get_running_loop()
        thread = threading.Thread(target=elsewhere)
        thread.start()
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(core.call(_slow, 0.3, "given up"), 0.05)
        found = list(await asyncio.gather(*(core.call(_seen, config, f"h{i}") for i in range(50))))
        found.append(await core.call(_slow, 0, "after"))
        await asyncio.to_thread(thread.join)
        assert not child._home_pending and not child._pending
        return found

    try:
        found = asyncio.run(scenario())
    finally:
        core.stop()
    assert found[-1] == "after"
    assert [(c, o) for c, _, o in found[:-1]] == [(config, f"h{i}") for i in range(50)]  # type: ignore[misc]
    assert [(c, o) for c, _, o in other] == [(config, f"t{i}") for i in range(50)]  # type: ignore[misc]


def _die_after(engine: Engine, seconds: float) -> None:
    import os
    import time

    time.sleep(seconds)
    os._exit(3)


def test_a_dead_child_fails_the_calls_waiting_on_both_pipes(db_url: str) -> None:
    """The child dies with calls waiting from the home loop and from another thread: every one
    fails with `BrokenProcessPool` (none hangs), and the next call starts a new child."""
    import threading
    from concurrent.futures.process import BrokenProcessPool

    core = CoreProcess(db_url)
    errors: list[BaseException] = []
    dying = threading.Event()

    def elsewhere() -> None:
        async def call() -> None:
            dying.wait(10)
            try:
                await asyncio.wait_for(core.call(_slow, 0, "never"), 10)
            except BrokenProcessPool as exc:
                errors.append(exc)

        asyncio.run(call())

    async def scenario() -> object:
        await core.start()
        thread = threading.Thread(target=elsewhere)
        thread.start()
        death = asyncio.ensure_future(core.call(_die_after, 0.5))
        waiting = [asyncio.ensure_future(core.call(_slow, 0, i)) for i in range(3)]
        await asyncio.sleep(0.05)
        dying.set()  # the other thread's call goes behind them
        for task in [death, *waiting]:
            with pytest.raises(BrokenProcessPool):
                await asyncio.wait_for(task, 10)
        await asyncio.to_thread(thread.join, 10)
        return await core.call(_slow, 0, "new child")

    try:
        assert asyncio.run(scenario()) == "new child"
    finally:
        core.stop()
    assert len(errors) == 1


@groupable
def _add_team(engine: Engine, code: str, elsewhere: bool = False) -> tuple[str, bool]:
    """A team added by the core (on another connection if `elsewhere`), and whether a group ran it."""
    from models import db

    running = bool(db._groups)
    if elsewhere:
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO team (code, name) VALUES (:c, :c)"), {"c": code})
    else:
        with db.session_scope(engine) as session:
            session.connection().execute(text("INSERT INTO team (code, name) VALUES (:c, :c)"), {"c": code})
    return code, running


@groupable
def _add_team_twice(engine: Engine, code: str) -> str:
    """The second insert breaks the unique code: this call's work is undone, nobody else's."""
    from models.db import session_scope

    with session_scope(engine) as session:
        session.connection().execute(text("INSERT INTO team (code, name) VALUES (:c, :c)"), {"c": code})
        session.connection().execute(text("INSERT INTO team (code, name) VALUES (:c, :c)"), {"c": code})
    return code


def _teams(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        return sorted(r[0] for r in conn.execute(text("SELECT code FROM team")))


def test_calls_waiting_together_are_answered_in_one_transaction_each_once(db_url: str, engine: Engine) -> None:
    """Groupable calls that wait behind a slow one run as a group (one SQLite transaction); a
    failing one is undone alone; one that needs another connection loses the group, which runs
    each call again alone: every answer right, every team added once."""
    from sqlalchemy.exc import IntegrityError

    core = CoreProcess(db_url)

    async def scenario() -> tuple[list[object], list[object]]:
        await core.start()
        slow = asyncio.ensure_future(core.call(_slow, 0.3, "slow"))
        await asyncio.sleep(0.05)
        first = await asyncio.gather(core.call(_add_team, "A1"), core.call(_add_team_twice, "A2"),
                                     core.call(_add_team, "A3"), return_exceptions=True)
        await slow
        slow = asyncio.ensure_future(core.call(_slow, 0.3, "slow"))
        await asyncio.sleep(0.05)
        second = await asyncio.gather(*(core.call(_add_team, f"B{i}", i == 2) for i in range(4)))
        await slow
        return list(first), list(second)

    try:
        first, second = asyncio.run(scenario())
    finally:
        core.stop()
    grouped = db_url.startswith("sqlite")  # a held connection: SQLite only
    assert first[0] == ("A1", grouped) and first[2] == ("A3", grouped)
    assert isinstance(first[1], IntegrityError)
    assert [code for code, _ in second] == ["B0", "B1", "B2", "B3"]  # type: ignore[misc]
    assert _teams(engine) == ["A1", "A3", "B0", "B1", "B2", "B3"]


def test_calls_sent_while_the_child_is_busy_never_wait_for_it(db_url: str) -> None:
    """The child reads its pipes only between calls. While it sleeps in one, the home loop and
    another thread send far more than a pipe holds (400 calls of 20 kB each, and one of 3 MB that
    the child reads in many pieces): no send waits for the child (the loop keeps its pace), and
    every answer comes back intact, on its own pipe, in order."""
    import threading
    import time

    core = CoreProcess(db_url)
    other: list[object] = []
    big = "大" * 1_000_000  # 3 MB in UTF-8

    def elsewhere(sent: threading.Event) -> None:
        async def calls() -> list[object]:
            futures = [asyncio.ensure_future(core.call(_slow, 0, f"t{i}" + "x" * 20_000)) for i in range(200)]
            await asyncio.sleep(0)
            sent.set()
            return list(await asyncio.gather(*futures))

        other.extend(asyncio.run(calls()))

    async def scenario() -> tuple[list[object], float, float]:
        await core.start()
        child = core._current()
        busy = asyncio.ensure_future(core.call(_slow, 1.0, "busy"))
        await asyncio.sleep(0.1)  # the child is in the slow call
        sent = threading.Event()
        thread = threading.Thread(target=elsewhere, args=(sent,))
        started = time.monotonic()
        thread.start()
        futures = [asyncio.ensure_future(core.call(_slow, 0, f"h{i}" + "x" * 20_000)) for i in range(200)]
        futures.append(asyncio.ensure_future(core.call(_slow, 0, big)))
        await asyncio.sleep(0)  # every call of the loop sent (or waiting in the outbox)
        assert await asyncio.to_thread(sent.wait, 5)
        took = time.monotonic() - started
        assert child._out[0]._flushing or child._out[1]._flushing  # the pipes were full indeed
        assert not busy.done()
        found = list(await asyncio.gather(*futures))
        await asyncio.to_thread(thread.join, 10)
        assert await busy == "busy"
        return found, took, time.monotonic() - started

    try:
        found, took, total = asyncio.run(scenario())
    finally:
        core.stop()
    assert took < 0.5 < total  # sent at once; answered after the slow call
    assert found[-1] == big
    assert found[:-1] == [f"h{i}" + "x" * 20_000 for i in range(200)]
    assert other == [f"t{i}" + "x" * 20_000 for i in range(200)]


def test_a_child_dying_with_calls_still_in_the_outbox_fails_them_all(db_url: str) -> None:
    """The child dies while calls wait in the parent's outbox (the pipe full): each fails with
    `BrokenProcessPool`, none hangs, and the next call starts a new child."""
    from concurrent.futures.process import BrokenProcessPool

    core = CoreProcess(db_url)

    async def scenario() -> object:
        await core.start()
        child = core._current()
        death = asyncio.ensure_future(core.call(_die_after, 0.3))
        await asyncio.sleep(0.05)
        waiting = [asyncio.ensure_future(core.call(_slow, 0, "x" * 50_000)) for _ in range(100)]
        await asyncio.sleep(0)
        assert child._out[1]._flushing
        for task in [death, *waiting]:
            with pytest.raises(BrokenProcessPool):
                await asyncio.wait_for(task, 10)
        return await core.call(_slow, 0, "new child")

    try:
        assert asyncio.run(scenario()) == "new child"
    finally:
        core.stop()
