"""PostgreSQL's pool: a connection idle long enough is pinged at checkout and replaced when dead."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.exc import OperationalError

from models.db import ping_when_idle


@pytest.fixture
def pooled(engine: Engine) -> Engine:
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite has no server to lose")
    return create_engine(engine.url, pool_size=1, max_overflow=0)


def _backend(engine: Engine) -> int:
    with engine.connect() as conn:
        pid: int = conn.execute(text("SELECT pg_backend_pid()")).scalar_one()
        return pid


def _terminate(engine: Engine, pid: int) -> None:
    with engine.connect() as conn:
        assert conn.execute(text("SELECT pg_terminate_backend(:p)"), {"p": pid}).scalar_one()


def test_an_idle_connection_the_server_ended_is_replaced_before_use(engine: Engine, pooled: Engine) -> None:
    ping_when_idle(pooled, 0.05)
    first = _backend(pooled)
    _terminate(engine, first)
    time.sleep(0.1)  # idle past the threshold: the next checkout pings, finds it dead, connects anew
    assert _backend(pooled) != first
    pooled.dispose()


def test_a_connection_used_a_moment_ago_is_lent_without_a_ping(engine: Engine, pooled: Engine) -> None:
    """The price of not pinging a busy pool: one failed statement after the server ended the connection,
    then SQLAlchemy drops the pool and the next one works."""
    ping_when_idle(pooled, 3600)
    first = _backend(pooled)
    _terminate(engine, first)
    with pytest.raises(OperationalError), pooled.connect() as conn:
        conn.execute(text("SELECT 1"))
    assert _backend(pooled) != first
    pooled.dispose()
