"""Index builds of bulk writes on SQLite: dropped before, built once after, maybe beside other work.

A bulk write of at least half a table's rows costs less with the table's secondary indexes
dropped and built once after it (a sort of the whole table) than kept (a descent of each tree per
row). `indexes_deferred` does that around one write; a sales import leaves its builds owed to
the end of its transaction (`owe_builds`), where they run in a thread of their own while the
standings are computed (`start_builds`, `finish_builds`): SQLite's C code lets go of the
interpreter lock, and the connection is serialized (`sqlite3.threadsafety` 3), so nothing else
may use it until they are done — which `finish_builds` waits for, before a read of the table, a
write or the commit.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from typing import Any

from sqlalchemy import Connection, Table, event

SORT_THREADS = 4
"""The most helper threads SQLite's sorter may take for an index build (`build_indexes`; never more
than the machine's cores, less one)."""


def drop_indexes(cursor: Any, names: Sequence[str]) -> list[str]:
    """Drop these indexes (SQLite, in the cursor's transaction); the statements that build them
    again (`build_indexes`), in the order given. An index that is not there is skipped.

    For a bulk write of at least half a table's rows: keeping an index costs a descent of its
    tree per row, building it afterwards one sort of the whole table."""
    statements = []
    for name in names:
        found = cursor.execute("SELECT sql FROM sqlite_master WHERE type = 'index' AND name = ?", (name,)).fetchone()
        if found is None or not found[0]:
            continue
        cursor.execute(f'DROP INDEX "{name}"')
        statements.append(found[0])
    return statements


def build_indexes(cursor: Any, statements: list[str]) -> None:
    """Run these CREATE INDEX statements (`drop_indexes`'), each taken off the list once done, with
    SQLite's sorter allowed helper threads (`PRAGMA threads`, back as it was after). Measured, the
    sales import's three builds at 1,000,000 rows on two cores (one helper thread): 1.68-1.96 s
    without, 1.40-1.59 s with it, for more CPU (2.2-2.6 s); beside the standings' computation the
    helper shares a core with it."""
    if not statements:
        return
    threads = max(0, min(SORT_THREADS, (os.cpu_count() or 1) - 1))
    before = cursor.execute("PRAGMA threads").fetchone()[0]
    cursor.execute(f"PRAGMA threads = {threads}")
    try:
        while statements:
            cursor.execute(statements[0])
            statements.pop(0)
    finally:
        cursor.execute(f"PRAGMA threads = {int(before)}")


PENDING_BUILDS = "mianzi_pending_builds"
"""Key in a pooled SQLite connection's `info`: index builds its transaction still owes (`owe_builds`)."""


class _Builds:
    """CREATE INDEX statements a transaction owes, run here or in a thread of their own (`start_builds`)."""

    def __init__(self, cursor: Any, statements: list[str]) -> None:
        self.cursor = cursor
        self.statements = statements
        self.thread: threading.Thread | None = None
        self.error: BaseException | None = None

    def start(self) -> None:
        if self.thread is None:
            self.thread = threading.Thread(target=self._run, name="index-builds", daemon=True)
            self.thread.start()

    def _run(self) -> None:
        try:
            build_indexes(self.cursor, self.statements)
        except BaseException as exc:  # noqa: BLE001 - raised again by `finish`, in the transaction's thread
            self.error = exc

    def finish(self) -> None:
        if self.thread is None:
            build_indexes(self.cursor, self.statements)
            return
        self.thread.join()
        if self.error is not None:
            raise self.error


def owe_builds(conn: Connection, cursor: Any, statements: list[str]) -> bool:
    """Leave these CREATE INDEX statements (`drop_indexes`') to the end of the transaction, so that
    they can run beside the Python work that follows (`start_builds`): a sales import's three
    builds (~2.4 s at 1,000,000 rows, SQLite's C code, which lets go of the interpreter lock) beside
    the standings' computation. They are run at the latest before the commit (`finish_builds`, a
    `commit` hook on this connection) and dropped by a rollback, which brings back the indexes as
    they were. False (nothing left pending) on an engine not of `make_engine`."""
    if not event.contains(conn.engine, "reset", dropped_at_reset) or not statements:
        return False
    conn.connection.info[PENDING_BUILDS] = _Builds(cursor, statements)
    if not event.contains(conn, "commit", finish_builds):  # left on the connection: no-ops once paid
        event.listen(conn, "commit", finish_builds)
        event.listen(conn, "rollback", _owed_at_rollback)
    return True


def start_builds(conn: Connection) -> None:
    """Start the builds the transaction owes (`owe_builds`) in a thread, if any: call it once the
    transaction's reads that need those indexes are done, before Python work that uses no database.
    Whatever next uses the connection must wait for them (`finish_builds`)."""
    builds = conn.connection.info.get(PENDING_BUILDS)
    if builds is not None:
        builds.start()


def builds_running(conn: Connection) -> bool:
    """Whether builds the transaction owes are running in their thread now (`start_builds`)."""
    builds = conn.connection.info.get(PENDING_BUILDS)
    return builds is not None and builds.thread is not None


def finish_builds(conn: Connection) -> None:
    """The builds the transaction owes, done (here, or waited for in their thread): before a read of
    the table they index, a write, or the commit."""
    builds = conn.connection.info.pop(PENDING_BUILDS, None)
    if builds is not None:
        builds.finish()


def _owed_at_rollback(conn: Connection) -> None:
    """A rollback brings back the dropped indexes as they were: only a running build is waited for."""
    _drop_builds(conn.connection.info)


def dropped_at_reset(_dbapi_conn: Any, record: Any, _state: Any) -> None:
    """The pool's reset of a connection given back without a commit (a rollback: nothing owed now)."""
    _drop_builds(record.info)


def _drop_builds(info: dict[Any, Any]) -> None:
    builds = info.pop(PENDING_BUILDS, None)
    if builds is not None and builds.thread is not None:
        builds.thread.join()


@contextmanager
def indexes_deferred(conn: Connection, table: Table, rows: int, others: int) -> Iterator[None]:
    """On SQLite, around a write of `rows` rows into `table` beside `others` it keeps: when the
    written ones are at least half of it, its secondary indexes dropped for the write and built
    again after it (`drop_indexes`, `build_indexes`), all in the caller's transaction (readers
    of other connections keep seeing the committed table and its indexes); otherwise nothing."""
    dbapi = conn.connection.dbapi_connection
    if conn.dialect.name != "sqlite" or dbapi is None or rows < others or not rows:
        yield
        return
    cursor = dbapi.cursor()
    try:
        statements = drop_indexes(cursor, [str(index.name) for index in table.indexes])
        try:
            yield
        except BaseException:
            with suppress(Exception):  # the transaction is lost anyway (a rollback brings them back)
                build_indexes(cursor, statements)
            raise
        build_indexes(cursor, statements)
    finally:
        cursor.close()
