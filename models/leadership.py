"""Which process leads which role: PostgreSQL session advisory locks, all on one connection of their own.

Several `mianzi serve` processes may share one PostgreSQL database, and some work must be done by
one of them alone: the scheduler's jobs (one close, one announcement), and each channel's
deliveries — every process keeps its ceilings in memory, so two deliverers for one channel would
send up to twice the platform's ceiling (and WeCom drops what goes over without a word). Each such
role is a session advisory lock; the process holding it leads. When that process stops it unlocks;
when it dies, or the network between it and the database parts, its connection goes away (TCP
keepalives notice a silent peer within about 25 s) and PostgreSQL releases the lock, so another
process takes the role at its next election.

All the locks of a process live on one connection opened for them alone, outside the pool: a
pooled connection is reset when it is returned, and the lock would go with it, or stay behind on
a connection lent to someone else. Threads share it (the scheduler runs in its own thread, the
delivery worker's elections in `asyncio.to_thread`), so each use of it is under a lock.

SQLite: one server process is assumed (docs/server.md); it leads every role and holds nothing.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Iterable

from sqlalchemy import Connection, Engine, create_engine
from sqlalchemy.pool import NullPool

from models.db import advisory_unlock, advisory_unlock_all, ping, try_advisory_lock

log = logging.getLogger("mianzi.leadership")

SCHEDULER = "scheduler"
SCHEDULER_KEY = 0x4D69616E7A69  # "Mianzi": the scheduler's key since the first release, kept so old and new agree
# libpq's keepalives: a database (or a leader) that vanished without closing is noticed in 10 + 5 × 3 s
_KEEPALIVES = {"keepalives": 1, "keepalives_idle": 10, "keepalives_interval": 5, "keepalives_count": 3}


def delivery_role(platform: str) -> str:
    """The role of the one process that delivers for `platform`."""
    return f"deliver:{platform}"


def lock_key(role: str) -> int:
    """The advisory lock's key of a role: a signed 64-bit number (PostgreSQL's bigint) of its name."""
    if role == SCHEDULER:
        return SCHEDULER_KEY
    digest = hashlib.blake2b(f"mianzi:{role}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


class Leadership:
    """The roles this process leads. `elect` takes those free and confirms those held; `resign` gives
    one back; `close` gives all back. On SQLite every role is this process's, always."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.shared = engine.dialect.name == "postgresql"
        self._lock = threading.Lock()
        self._conn: Connection | None = None
        self._held: set[str] = set()
        self._locks: Engine | None = None

    def elect(self, roles: Iterable[str]) -> frozenset[str]:
        """Of `roles`, those this process leads now: the ones it held (its connection still answers) and
        the ones it could take. A database out of reach leads to none (logged), never to an exception."""
        wanted = list(dict.fromkeys(roles))
        if not self.shared:
            return frozenset(wanted)
        with self._lock:
            try:
                conn = self._connection()
                for role in wanted:
                    if role not in self._held and try_advisory_lock(conn, key=lock_key(role)):
                        self._held.add(role)
                        log.info("this process now leads %s", role)
                conn.commit()
            except Exception as exc:
                self._lost(exc)
            return frozenset(r for r in wanted if r in self._held)

    def leads(self, role: str) -> bool:
        """Whether this process led `role` at its last election (no round trip: for /healthz)."""
        return not self.shared or role in self._held

    def resign(self, role: str) -> None:
        """Give `role` back, so another process may take it at once."""
        if not self.shared:
            return
        with self._lock:
            if role not in self._held or self._conn is None:
                return
            self._held.discard(role)
            try:
                advisory_unlock(self._conn, key=lock_key(role))
                self._conn.commit()
            except Exception as exc:
                self._lost(exc)

    def close(self) -> None:
        """Give every role back, then close the connection. The locks are given back first, by a
        statement: a closed connection's session ends a moment later on the server, and another process
        electing at once would find them still held."""
        with self._lock:
            self._held.clear()
            if self._conn is not None:
                try:
                    advisory_unlock_all(self._conn)
                    self._conn.commit()
                except Exception:  # already gone: its locks went with it
                    log.debug("the leadership connection was already closed", exc_info=True)
                finally:
                    self._conn.close()
                self._conn = None
            if self._locks is not None:
                self._locks.dispose()
                self._locks = None

    def _connection(self) -> Connection:
        """The connection the locks live on: pinged when it holds some (a lost one means they are lost),
        opened anew when there is none."""
        if self._conn is not None:
            ping(self._conn)
            return self._conn
        if self._locks is None:
            self._locks = create_engine(self.engine.url, poolclass=NullPool,
                                        connect_args={"application_name": "mianzi-leadership", **_KEEPALIVES})
        self._conn = self._locks.connect()
        return self._conn

    def _lost(self, exc: Exception) -> None:
        """The connection failed: whatever it held is held no more (PostgreSQL releases a lock whose
        session ended); the next election opens a new one."""
        if self._held:
            log.warning("leadership of %s lost: %s", ", ".join(sorted(self._held)), exc)
        else:
            log.warning("leadership election failed: %s", exc)
        self._held.clear()
        if self._conn is not None:
            try:
                self._conn.close()
            except Exception:
                log.debug("closing the failed leadership connection failed", exc_info=True)
            self._conn = None
