"""One leader per role across processes: PostgreSQL's advisory locks, lost with their connection."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest
from sqlalchemy import Engine, text

from models.leadership import SCHEDULER, SCHEDULER_KEY, Leadership, delivery_role, lock_key

TELEGRAM, WECOM = delivery_role("telegram"), delivery_role("wecom")
ROLES = [SCHEDULER, TELEGRAM, WECOM]


@pytest.fixture
def postgresql(engine: Engine) -> Engine:
    if engine.dialect.name != "postgresql":
        pytest.skip("several processes lead only on PostgreSQL")
    return engine


def test_keys_are_distinct_and_the_scheduler_keeps_its_old_one() -> None:
    keys = {lock_key(role) for role in [*ROLES, delivery_role("wechat")]}
    assert len(keys) == 4 and lock_key(SCHEDULER) == SCHEDULER_KEY
    assert all(-(2**63) <= key < 2**63 for key in keys)  # PostgreSQL's bigint


def test_on_sqlite_this_process_leads_everything(engine: Engine) -> None:
    if engine.dialect.name != "sqlite":
        pytest.skip("SQLite only")
    first, second = Leadership(engine), Leadership(engine)
    assert first.elect(ROLES) == second.elect(ROLES) == set(ROLES)
    first.resign(SCHEDULER)
    assert first.leads(SCHEDULER)  # one server process is assumed: nothing to hand over


def test_each_role_has_one_leader_and_passes_on_resign(postgresql: Engine) -> None:
    first, second = Leadership(postgresql), Leadership(postgresql)
    try:
        assert first.elect([SCHEDULER, TELEGRAM]) == {SCHEDULER, TELEGRAM}
        assert second.elect(ROLES) == {WECOM}  # the free one only
        assert first.elect([SCHEDULER, TELEGRAM]) == {SCHEDULER, TELEGRAM}  # confirmed, not taken twice
        first.resign(TELEGRAM)
        assert not first.leads(TELEGRAM)
        assert second.elect(ROLES) == {TELEGRAM, WECOM}
        first.close()
        assert second.elect(ROLES) == set(ROLES)
        assert first.elect(ROLES) == set()
    finally:
        first.close()
        second.close()


def test_a_role_held_twice_in_one_session_is_released_by_one_resign(postgresql: Engine) -> None:
    """pg_try_advisory_lock stacks in a session: electing a held role must not lock it again."""
    first, second = Leadership(postgresql), Leadership(postgresql)
    try:
        for _ in range(3):
            assert first.elect([TELEGRAM]) == {TELEGRAM}
        first.resign(TELEGRAM)
        assert second.elect([TELEGRAM]) == {TELEGRAM}
    finally:
        first.close()
        second.close()


def test_a_connection_the_server_ends_loses_its_roles(postgresql: Engine) -> None:
    first, second = Leadership(postgresql), Leadership(postgresql)
    try:
        assert first.elect(ROLES) == set(ROLES)
        with postgresql.connect() as admin:
            ended = admin.execute(text(
                "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' AND granted "
                "AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) "  # ours alone
                "AND objsubid = 1 AND ((classid::bigint << 32) | objid::bigint) = :k"),
                {"k": lock_key(TELEGRAM)}).scalars().all()
        assert ended == [True]
        deadline = time.monotonic() + 10
        while second.elect(ROLES) != set(ROLES) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert second.leads(TELEGRAM) and second.leads(SCHEDULER)
        assert first.elect(ROLES) == set()  # it notices at its next election, and leads nothing
        assert not first.leads(TELEGRAM)
    finally:
        first.close()
        second.close()


def test_a_killed_leader_is_replaced(postgresql: Engine, db_url: str) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time\n"
         "from sqlalchemy import create_engine\n"
         "from models.leadership import Leadership, SCHEDULER, delivery_role\n"
         "held = Leadership(create_engine(sys.argv[1]))\n"
         "won = held.elect([SCHEDULER, delivery_role('telegram')])\n"
         "print(len(won), flush=True)\n"
         "time.sleep(600)\n", db_url],
        stdout=subprocess.PIPE, text=True)
    follower = Leadership(postgresql)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "2"
        assert follower.elect([SCHEDULER, TELEGRAM]) == set()
        holder.kill()  # SIGKILL: no unlock, no goodbye; the socket closes with the process
        holder.wait(timeout=10)
        deadline = time.monotonic() + 10
        while follower.elect([SCHEDULER, TELEGRAM]) != {SCHEDULER, TELEGRAM} and time.monotonic() < deadline:
            time.sleep(0.05)
        assert follower.leads(SCHEDULER) and follower.leads(TELEGRAM)
    finally:
        holder.kill()
        holder.communicate(timeout=10)
        follower.close()


def test_a_database_out_of_reach_leads_to_nothing_not_to_an_error(postgresql: Engine) -> None:
    from sqlalchemy import create_engine

    url = postgresql.url.set(port=1)  # nothing listens there
    lost = Leadership(create_engine(url))
    assert lost.elect(ROLES) == set()
    assert not lost.leads(SCHEDULER)
    lost.close()
