"""Whether the database can be written: what `/healthz` reports and `POST /api/sales` explains.

Reading is not enough: on a full disk or a read-only file `SELECT 1` still works while every write
fails. Neither a write that is rolled back (SQLite keeps it in its page cache, the disk never sees
it) nor SQLite's `BEGIN IMMEDIATE` (granted on a read-only file) tells, so the check is a real,
committed write of one row: the claim (`InboundSeen`) of the pseudo-platform `health`, which no
channel uses, its time set to now. It is cached for `ttl` seconds, so a load balancer asking many
times a second costs one small write a second.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from sqlalchemy import Engine

from models import inbound_seen
from models.db import writer_wait
from models.values import utcnow

log = logging.getLogger("mianzi.health")

PLATFORM, KEY = "health", "write-check"
BUSY_MS = 1000  # SQLite: how long the check waits for another writer (an import) before saying `busy`
# SQLSTATEs (PostgreSQL) and result codes (SQLite) of a database that cannot take writes
_SQLSTATES = {"25006": "read_only", "53100": "full", "58030": "io_error"}
_SQLITE = {"SQLITE_READONLY": "read_only", "SQLITE_FULL": "full", "SQLITE_BUSY": "busy", "SQLITE_LOCKED": "busy",
           "SQLITE_IOERR": "io_error"}


def write_failure(exc: BaseException) -> str | None:
    """Why a write failed when the cause is the database's state, not the statement: `read_only`
    (a read-only file, transaction or replica), `full` (disk or quota), `busy` (SQLite: another
    process holds the write lock), `io_error`; None for anything else."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:  # SQLAlchemy's wrapper, the driver's error, its cause
        seen.add(id(current))
        state = getattr(current, "sqlstate", None)
        if state in _SQLSTATES:
            return _SQLSTATES[state]
        name = getattr(current, "sqlite_errorname", None)
        if isinstance(name, str):
            for prefix, reason in _SQLITE.items():
                if name.startswith(prefix):
                    return reason
        current = getattr(current, "orig", None) or current.__cause__ or current.__context__
    return None


def check_writable(engine: Engine) -> str:
    """`ok`, a `write_failure` reason, or `error` (the database cannot be reached at all)."""
    try:
        # not the engine's 30 s: an import holding SQLite's lock means busy, not broken
        with engine.connect() as conn, writer_wait(conn, ms=BUSY_MS):
            inbound_seen.touch(conn, platform=PLATFORM, key=KEY, seen_at=utcnow())
            conn.commit()
        return "ok"
    except Exception as exc:
        reason = write_failure(exc) or "error"
        log.warning("health check: the database cannot be written (%s): %s", reason, exc)
        return reason


class DatabaseHealth:
    """`check_writable`, in a thread, at most once per `ttl` seconds (concurrent askers share one check)."""

    def __init__(self, engine: Callable[[], Engine], ttl: float = 1.0, timeout: float = 5.0) -> None:
        self._engine = engine
        self.ttl, self.timeout = ttl, timeout
        self._checked_at = -float("inf")
        self._state = "error"
        self._lock = asyncio.Lock()

    async def state(self) -> str:
        async with self._lock:
            if time.monotonic() - self._checked_at >= self.ttl:
                try:
                    self._state = await asyncio.wait_for(asyncio.to_thread(check_writable, self._engine()),
                                                         self.timeout)
                except TimeoutError:
                    log.warning("health check: the database did not answer within %.0fs", self.timeout)
                    self._state = "error"
                except Exception:  # the engine itself (a bad URL, a failed migration)
                    log.exception("health check: database unreachable")
                    self._state = "error"
                self._checked_at = time.monotonic()
            return self._state
