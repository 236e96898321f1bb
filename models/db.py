"""Engine and sessions. SQLite by default, PostgreSQL through the same URL."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, cast

from sqlalchemy import Connection, CursorResult, Engine, Executable, Result, Table, create_engine, event, text
from sqlmodel import Session, SQLModel

FOREIGN_KEYS_OFF = "mianzi_foreign_keys_off"
"""Key in a pooled SQLite connection's `info`: its foreign-key checks are off until it is checked in."""


def make_engine(url: str) -> Engine:
    """An engine tuned for the database behind `url`.

    SQLite gets WAL, a busy timeout (several processes may write: the CLI while `serve` runs) and
    `synchronous=NORMAL`, which is durable across application crashes in WAL mode.
    """
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record) -> None:  # type: ignore[no-untyped-def]
            cur = dbapi_conn.cursor()
            if ":memory:" not in url:
                cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA cache_size=-65536")  # 64 MiB: bulk imports touch three indexes at random
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        event.listen(engine, "checkin", foreign_keys_back_on)
        return engine
    return create_engine(url, pool_pre_ping=True)


def foreign_keys_back_on(dbapi_conn: Any, record: Any) -> None:
    """Pool `checkin` hook of SQLite engines: a connection whose foreign-key checks a bulk sales
    import turned off (for its one transaction: the pragma cannot change inside a transaction) gets
    them back once that transaction has ended, before anyone else can check it out."""
    if dbapi_conn is not None and record.info.pop(FOREIGN_KEYS_OFF, False):
        if dbapi_conn.in_transaction:
            dbapi_conn.rollback()
        dbapi_conn.execute("PRAGMA foreign_keys=ON")


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """A session that commits on success and rolls back on any error."""
    with Session(engine, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


def read(session: Session, statement: Executable, params: dict[str, Any] | None = None
         ) -> CursorResult[*tuple[Any, ...]]:
    """A Core statement on the session's connection (in its transaction): plain rows, no ORM objects.

    For the hot read paths of a chat message: `session.execute` builds ORM entities and crosses
    the ORM's execution layer, several times the cost of the query itself on an index. Pending
    ORM changes are flushed first, as `session.execute` would (autoflush).
    """
    if session.autoflush:
        session.flush()
    return session.connection().execute(statement, params)


class Prepared:
    """A Core statement run through the DB-API cursor of the session's connection: compiled once per
    dialect, then each run is the driver's own execute and fetch, without SQLAlchemy's execution
    layer and result processing (about 0.1 ms a statement on this project's machine, more than an
    index probe costs). For the hottest reads only (`models.standings`' place and state of a
    board): the values come as the driver returns them — on SQLite datetimes and JSON as text,
    booleans as 0/1 — so the caller converts them (`models.plain.read_datetime`, `read_json`).
    In the session's transaction; pending ORM changes are flushed first, as `read` does."""

    def __init__(self, statement: Executable) -> None:
        self.statement = statement
        self._compiled: dict[str, tuple[str, tuple[str, ...] | None, dict[str, Any]]] = {}

    def _for(self, dialect: Any) -> tuple[str, tuple[str, ...] | None, dict[str, Any]]:
        found = self._compiled.get(dialect.name)
        if found is None:
            compiled = self.statement.compile(dialect=dialect)  # type: ignore[attr-defined]  # every statement has it
            order = tuple(compiled.positiontup) if compiled.positiontup is not None else None
            found = (compiled.string, order, dict(compiled.construct_params(_check=False)))
            self._compiled[dialect.name] = found
        return found

    def rows(self, session: Session, params: dict[str, Any]) -> list[tuple[Any, ...]]:
        if session.autoflush:
            session.flush()
        conn = session.connection()
        sql, order, defaults = self._for(conn.dialect)
        values = {**defaults, **params}
        cursor = conn.connection.cursor()
        try:
            cursor.execute(sql, tuple(values[name] for name in order) if order is not None else values)
            return list(cursor.fetchall())
        finally:
            cursor.close()


def rowcount(result: Result[Any]) -> int:
    """The rows an UPDATE or DELETE run through `session.execute` changed (its result is a
    `CursorResult`, which the ORM's signature does not say)."""
    return cast("CursorResult[Any]", result).rowcount


def table_of(model: type[SQLModel]) -> Table:
    """A table class's Core `Table`, for the bulk statements and plain-row reads that bypass the ORM."""
    return model.__table__  # type: ignore[attr-defined,no-any-return]  # set by SQLModel's metaclass, not in its stubs


def try_advisory_lock(conn: Connection, *, key: int) -> bool:
    """PostgreSQL: take the session advisory lock `key` on this connection if nobody holds it (it is
    held until `advisory_unlock` or until the connection goes away)."""
    return bool(conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": key}).scalar())


def advisory_unlock(conn: Connection, *, key: int) -> None:
    """PostgreSQL: give back the session advisory lock `key` this connection holds."""
    conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})


def ping(conn: Connection) -> None:
    """A round trip on the connection: raises if it is gone."""
    conn.execute(text("SELECT 1"))


@contextmanager
def writer_wait(conn: Connection, *, ms: int) -> Iterator[None]:
    """Within the block, a write on `conn` waits at most `ms` for another writer's lock (SQLite;
    the engine's own wait is 30 s, for imports): for small writes that may be skipped when the
    database is busy (a health probe, a session's last-seen time). The block's transaction is
    rolled back at its end unless the caller committed it. Elsewhere nothing changes."""
    if conn.dialect.name != "sqlite":
        yield
        return
    waited = conn.exec_driver_sql("PRAGMA busy_timeout").scalar()
    conn.exec_driver_sql(f"PRAGMA busy_timeout = {int(ms)}")
    try:
        yield
    finally:
        conn.rollback()
        conn.exec_driver_sql(f"PRAGMA busy_timeout = {int(waited or 0)}")
