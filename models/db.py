"""Engine and sessions. SQLite by default, PostgreSQL through the same URL."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from itertools import chain
from typing import Any, cast

from sqlalchemy import JSON, Connection, CursorResult, Engine, Executable, Result, Table, create_engine, event, text
from sqlalchemy.exc import DBAPIError, DisconnectionError
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import GenericFunction
from sqlmodel import Session, SQLModel

from models.indexes import dropped_at_reset

ROWS_PER_INSERT = 50
"""Rows per statement of SQLite's bulk inserts (`insert_rows`, the sales import): one execution of a
statement of 50 rows costs SQLite and the driver much less than 50 executions of a one-row
statement (each opens the table's and its indexes' cursors, and goes through the driver's
per-execution work). Measured, 1,000,000 sales by the driver into the sale table with its `ext_id`
index: 3.6–3.8 s of CPU one row a statement, 2.3–2.6 s fifty (flattening the rows included); 10 and
100 rows were no better than 50."""
_MAX_VARIABLES = 999  # SQLite's limit of bound values per statement before 3.32
IDLE_PING_SECONDS = 30.0  # PostgreSQL: a pooled connection unused this long is pinged before it is lent again
_CHECKED_IN = "mianzi_checked_in"  # key in a pooled connection's `info`: when it was last given back
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
        event.listen(engine, "reset", dropped_at_reset)
        return engine
    engine = create_engine(url)
    ping_when_idle(engine, IDLE_PING_SECONDS)
    return engine


def ping_when_idle(engine: Engine, idle_seconds: float) -> None:
    """Ping a pooled connection at checkout when it lay unused in the pool for `idle_seconds` or more;
    a dead one is replaced before anyone uses it (SQLAlchemy's pessimistic disconnect handling, raising
    `DisconnectionError` at checkout).

    Not `pool_pre_ping`, which pings at every checkout: a round trip (0.1–0.25 ms on loopback, a
    quarter of a chat message's reads) that a busy server pays for nothing, since a connection used a
    moment ago is alive. A database restarted while connections were in use costs one failed
    statement, after which SQLAlchemy drops the whole pool (it sees the disconnect)."""

    @event.listens_for(engine, "checkin")
    def _checked_in(_dbapi_conn: Any, record: Any) -> None:
        record.info[_CHECKED_IN] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checked_out(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        since = record.info.get(_CHECKED_IN)
        if since is None or time.monotonic() - since < idle_seconds:
            return  # new, or used a moment ago
        try:
            engine.dialect.do_ping(dbapi_conn)
        except engine.dialect.loaded_dbapi.Error as exc:
            if engine.dialect.is_disconnect(exc, dbapi_conn, None):
                raise DisconnectionError(str(exc)) from exc
            raise


def foreign_keys_back_on(dbapi_conn: Any, record: Any) -> None:
    """Pool `checkin` hook of SQLite engines: a connection whose foreign-key checks a bulk sales
    import turned off (for its one transaction: the pragma cannot change inside a transaction) gets
    them back once that transaction has ended, before anyone else can check it out."""
    if dbapi_conn is not None and record.info.pop(FOREIGN_KEYS_OFF, False):
        if dbapi_conn.in_transaction:
            dbapi_conn.rollback()
        dbapi_conn.execute("PRAGMA foreign_keys=ON")


def begin_unchecked(conn: Connection) -> bool:
    """On SQLite, start the connection's transaction with the write lock taken (`BEGIN IMMEDIATE`)
    and foreign-key checks off, if possible; whether it did.

    For the bulk writes whose keys are right by construction (a sales import, a contest's close).
    `PRAGMA foreign_keys` cannot change inside a transaction, so this only happens when the
    caller's transaction has not written yet (and the engine is one of `make_engine`'s, whose
    pool turns the checks back on when the connection is checked in, after the commit or
    rollback). Everything else the caller does in the same transaction runs without the checks.
    """
    if conn.dialect.name != "sqlite":
        return False
    dbapi = conn.connection.dbapi_connection
    if (dbapi is None or dbapi.in_transaction or conn.connection.info.get(HELD)
            or not event.contains(conn.engine, "checkin", foreign_keys_back_on)):
        return False
    cursor = dbapi.cursor()
    try:
        if cursor.execute("PRAGMA foreign_keys").fetchone()[0]:
            conn.connection.info[FOREIGN_KEYS_OFF] = True
            cursor.execute("PRAGMA foreign_keys=OFF")
        cursor.execute("BEGIN IMMEDIATE")
    finally:
        cursor.close()
    return True


HELD = "mianzi_held"
"""Key in a connection's `info`: `hold_connection` keeps it for its thread's sessions (never checked in)."""


class _Held:
    """The connection `hold_connection` keeps for one thread, and the one session reused on it."""

    def __init__(self, engine: Engine, thread: int, conn: Connection) -> None:
        self.engine = engine
        self.thread = thread
        self.conn = conn
        self.session: Session | None = None
        self.busy = False  # the session is lent to a `session_scope` now


_held: dict[int, _Held] = {}


def hold_connection(engine: Engine) -> bool:
    """From now on, `session_scope(engine)` in this thread runs on one connection kept open, instead
    of a pool checkout and check-in per session; whether it does (SQLite only).

    For the chat core's process, which answers one message after another on one thread: the
    checkout, the check-in and its reset were a tenth of a WeChat `排行` there (py-spy). SQLite
    only: PostgreSQL's pool pings a connection that lay idle before lending it (`ping_when_idle`),
    which lets a restarted server be ridden out, and a held connection would skip that. A bulk
    write's unchecked transaction (`begin_unchecked`) needs the check-in to turn the foreign-key
    checks back on, so it is refused on the held connection (the write runs checked)."""
    if engine.dialect.name != "sqlite":
        return False
    conn = engine.connect()
    conn.connection.info[HELD] = True
    _held[id(engine)] = _Held(engine, threading.get_ident(), conn)
    return True


CHECKPOINT_SECONDS = 1.0  # how often the WAL is copied into the database file when checkpoints run apart
_apart: dict[int, threading.Event] = {}  # engines whose held connection leaves checkpoints to a thread


def checkpoint_apart(engine: Engine, every: float = CHECKPOINT_SECONDS) -> threading.Event | None:
    """The held connection (`hold_connection`) stops checkpointing SQLite's write-ahead log at its
    commits; a thread of this process does it instead, every `every` seconds, without waiting for
    anyone (`PRAGMA wal_checkpoint(PASSIVE)`: the writer goes on appending meanwhile). Returns the
    event that stops the thread, None when no connection is held (PostgreSQL, or not held).

    Why: by default the commit that takes the log past 1,000 pages copies it into the database file
    and syncs it, there and then. In the chat core that commit is a message's, and every message
    behind it waits: measured here, one commit in a few hundred took 20–700 ms (2-row transactions,
    `synchronous=NORMAL`), which was the open loop's p99."""
    held = _held_for(engine)
    if held is None or id(engine) in _apart:
        return None
    _autocheckpoint_off(held.conn)
    stop = _apart[id(engine)] = threading.Event()
    raw = engine.raw_connection()  # its own connection: a checkpoint inside the writer's would block it

    def run() -> None:
        try:
            while not stop.wait(every):
                try:
                    raw.driver_connection.execute("PRAGMA wal_checkpoint(PASSIVE)")  # type: ignore[union-attr]
                except Exception:  # busy or gone: the next round tries again; nothing here is the user's
                    continue
        finally:
            raw.close()

    threading.Thread(target=run, name="wal-checkpoint", daemon=True).start()
    return stop


def _autocheckpoint_off(conn: Connection) -> None:
    conn.connection.driver_connection.execute("PRAGMA wal_autocheckpoint=0")  # type: ignore[union-attr]


def release_connection(engine: Engine) -> None:
    """Undo `hold_connection`: the held connection goes back to the pool."""
    stop = _apart.pop(id(engine), None)
    if stop is not None:
        stop.set()
    found = _held.pop(id(engine), None)
    if found is not None:
        if not found.conn.closed and not found.conn.invalidated:
            found.conn.connection.info.pop(HELD, None)
        found.conn.close()


class GroupConflict(RuntimeError):
    """Another connection of this process was asked for while a group held the write lock
    (`grouped`): refused at once rather than left waiting for the lock this thread holds."""


class _Group:
    """A group's state on the held connection: whether it runs now, and whether it was lost (its
    transaction gone, a savepoint refused, another connection asked for)."""

    def __init__(self, dbapi: Any) -> None:
        self.dbapi = dbapi
        self.thread = threading.get_ident()
        self.lost = False


_groups: dict[int, _Group] = {}  # id(engine) → the group running on its held connection
_SAVEPOINT = "mianzi_group"


@contextmanager
def grouped(engine: Engine) -> Iterator[Callable[[], bool] | None]:
    """Several `session_scope`s on the held connection (`hold_connection`) in one SQLite transaction:
    each SQLAlchemy transaction there becomes a savepoint of it (BEGIN … SAVEPOINT/RELEASE …
    COMMIT), so a scope's commit is a RELEASE and its rollback undoes only its own work.

    Yields `commit`: call it after the last scope; True when everything was committed together.
    False — nothing of the group was kept, each must run again alone — when the group was lost: its
    transaction rolled back under it (SQLite does on a full disk), a savepoint refused, another
    connection of this process asked for (it would wait for the lock the group holds:
    `GroupConflict`), the commit failed, or `commit` was never called (an error left the block).
    Nothing commits before `commit`: every savepoint is opened inside the group's transaction.

    For the core process, whose waiting answers then pay for one commit together (a commit was
    ~100 µs of CPU of a ~400 µs WeChat `排行`). Yields None instead (nothing grouped: the caller
    runs the work alone) where nothing is held, or the held connection is in a transaction or a
    group already."""
    held = _held_for(engine)
    dbapi = held.conn.connection.dbapi_connection if held is not None and not held.busy else None
    if dbapi is None or dbapi.in_transaction or id(engine) in _groups:
        yield None
        return
    _patch_dialect(engine)
    group = _groups[id(engine)] = _Group(dbapi)
    done = False

    def commit() -> bool:
        nonlocal done
        done = True
        del _groups[id(engine)]
        if group.lost or not dbapi.in_transaction:
            return False
        try:
            dbapi.commit()
        except Exception:
            return False
        return True

    dbapi.execute("BEGIN")
    try:
        yield commit
    finally:
        if not done:
            _groups.pop(id(engine), None)
        if dbapi.in_transaction:
            try:
                dbapi.rollback()
            except Exception:  # the connection is gone: the next `_held_for` replaces it
                pass


def _patch_dialect(engine: Engine) -> None:
    """The engine's dialect begins, commits and rolls back a held connection's transaction as a
    savepoint of the group running on it (`grouped`); everything else as before."""
    dialect = engine.dialect
    if getattr(dialect, "_mianzi_grouped", False):
        return
    begin, commit, rollback = dialect.do_begin, dialect.do_commit, dialect.do_rollback
    key = id(engine)

    def group_of(connection: Any) -> _Group | None:
        """The group running on `connection` (the pool's proxy, as SQLAlchemy passes it, or the
        driver's connection), if any."""
        group = _groups.get(key)
        if group is None:
            return None
        return group if getattr(connection, "dbapi_connection", connection) is group.dbapi else None

    def do_begin(dbapi_connection: Any) -> None:
        group = group_of(dbapi_connection)
        if group is None:
            begin(dbapi_connection)
            return
        if not group.dbapi.in_transaction:  # rolled back under the group: nothing may commit alone
            group.lost = True
            group.dbapi.execute("BEGIN")
        group.dbapi.execute(f"SAVEPOINT {_SAVEPOINT}")

    def in_group(group: _Group, *statements: str) -> None:
        """The statements on the group's connection; a failure loses the group."""
        try:
            for statement in statements:
                group.dbapi.execute(statement)
        except Exception:
            group.lost = True
            raise

    def do_commit(dbapi_connection: Any) -> None:
        group = group_of(dbapi_connection)
        if group is None:
            commit(dbapi_connection)
        else:
            in_group(group, f"RELEASE {_SAVEPOINT}")

    def do_rollback(dbapi_connection: Any) -> None:
        group = group_of(dbapi_connection)
        if group is None:
            rollback(dbapi_connection)
        else:
            in_group(group, f"ROLLBACK TO {_SAVEPOINT}", f"RELEASE {_SAVEPOINT}")

    def checkout(_dbapi: Any, _record: Any, _proxy: Any) -> None:
        group = _groups.get(key)
        if group is not None and group.thread == threading.get_ident():
            group.lost = True
            raise GroupConflict("another connection asked for inside a group")

    dialect.do_begin, dialect.do_commit, dialect.do_rollback = (  # type: ignore[method-assign]
        do_begin, do_commit, do_rollback)
    event.listen(engine, "checkout", checkout)
    dialect._mianzi_grouped = True  # type: ignore[attr-defined]


def _held_for(engine: Engine) -> _Held | None:
    """What is held for `engine` in this thread (its connection a new one if it was invalidated), else
    None; None too inside another session's transaction on it (that session keeps it)."""
    found = _held.get(id(engine))
    if found is None or found.engine is not engine or found.thread != threading.get_ident():
        return None
    if found.conn.closed or found.conn.invalidated:
        found.conn.close()
        found.conn = engine.connect()
        found.conn.connection.info[HELD] = True
        if id(engine) in _apart:
            _autocheckpoint_off(found.conn)
        found.session = None
    if found.conn.in_transaction():  # a session inside another one's: its own pooled connection, as before
        return None
    return found


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """A session that commits on success and rolls back on any error (on the connection
    `hold_connection` keeps, in the thread that holds it).

    On the held connection one session is reused, closed after each use (a closed session starts
    again empty: no object, no transaction): building a session and its first transaction was a
    third of a session's whole cost there (~25 µs of a WeChat `排行`)."""
    held = _held_for(engine)
    if held is None or held.busy:
        with (Session(engine, expire_on_commit=False) if held is None
              else Session(bind=held.conn, expire_on_commit=False)) as session:
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise
        return
    if held.session is None:
        held.session = Session(bind=held.conn, expire_on_commit=False)
    reused = held.session
    held.busy = True
    try:
        yield reused
        reused.commit()
    except BaseException:
        reused.rollback()
        raise
    finally:
        reused.close()
        held.busy = False


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
        self._processors: dict[str, list[Callable[[Any], Any] | None]] = {}

    def _for(self, dialect: Any) -> tuple[str, tuple[str, ...] | None, dict[str, Any]]:
        found = self._compiled.get(dialect.name)
        if found is None:
            compiled = self.statement.compile(dialect=dialect)  # type: ignore[attr-defined]  # every statement has it
            order = tuple(compiled.positiontup) if compiled.positiontup is not None else None
            found = (compiled.string, order, dict(compiled.construct_params(_check=False)))
            self._compiled[dialect.name] = found
        return found

    def typed_rows(self, session: Session, params: dict[str, Any]) -> list[tuple[Any, ...]]:
        """`rows` of a SELECT with each value converted by its column type's own result processor
        (SQLite's datetime and date text, its 0/1 booleans …): what SQLAlchemy's result returns,
        without its execution layer."""
        rows = self.rows(session, params)
        dialect = session.connection().dialect
        found = self._processors.get(dialect.name)
        if found is None:
            found = self._processors[dialect.name] = [
                c.type.dialect_impl(dialect).result_processor(dialect, None)
                for c in self.statement.selected_columns]  # type: ignore[attr-defined]  # a SELECT
        if not any(found):
            return rows
        return [tuple(value if convert is None or value is None else convert(value)
                      for convert, value in zip(found, row, strict=True)) for row in rows]

    def rows(self, session: Session, params: dict[str, Any]) -> list[tuple[Any, ...]]:
        if session.autoflush:
            session.flush()
        return self.rows_on(session.connection(), params)

    def rows_on(self, conn: Connection, params: dict[str, Any]) -> list[tuple[Any, ...]]:
        """`rows` on a Core connection, in its transaction (no session, nothing flushed)."""
        sql, order, defaults = self._for(conn.dialect)
        values = {**defaults, **params}
        cursor = conn.connection.cursor()
        try:
            cursor.execute(sql, tuple(values[name] for name in order) if order is not None else values)
            return list(cursor.fetchall())
        finally:
            cursor.close()


def bind_converter(column: Any, dialect: Any) -> Callable[[Any], Any]:
    """How SQLAlchemy turns a Python value into what the driver stores for `column` (its type's bind
    processor: SQLite's datetime text, the JSON serializer …), for parameters of a `Prepared` write."""
    convert = column.type.dialect_impl(dialect).bind_processor(dialect)
    return convert if convert is not None else _same


def _same(value: Any) -> Any:
    return value


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


def advisory_unlock_all(conn: Connection) -> None:
    """PostgreSQL: give back every session advisory lock this connection holds."""
    conn.execute(text("SELECT pg_advisory_unlock_all()"))


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


def insert_rows(session: Session, table: Table, rows: Sequence[Mapping[str, Any]],
                bound: list[tuple[str, list[Any]]] | None = None) -> None:
    """Many rows (all with the keys of the first) into `table`, in the session's transaction: what
    `session.execute(table.insert(), rows)` stores, value for value, in one `executemany` of the
    driver (`bound`: the rows as `bind_rows` converted them already).

    On PostgreSQL `COPY_FROM` rows or more go by COPY (`copy_rows`).
    """
    if not rows:
        return
    conn = session.connection()
    if conn.dialect.name == "postgresql" and len(rows) >= COPY_FROM:
        copy_rows(conn, table, rows)
        return
    for sql, params in bound if bound is not None else bind_rows(conn.dialect, table, rows):
        conn.exec_driver_sql(sql, params)


def bind_rows(dialect: Any, table: Table, rows: Sequence[Mapping[str, Any]]) -> list[tuple[str, list[Any]]]:
    """`insert_rows`' statements and their parameters (Python's work alone, no database): each value
    through its column type's own bind processor (the JSON serializer, SQLite's datetime text …), as
    SQLAlchemy would convert it; what is skipped is SQLAlchemy's building of each row's parameters,
    which was half the time of writing 100,000 standings lines. With positional parameters
    (SQLite), `ROWS_PER_INSERT` rows go in one statement, in order."""
    if not rows:
        return []
    names = list(rows[0])
    compiled = table.insert().compile(dialect=dialect, column_keys=names)
    keys = list(compiled.positiontup or ()) if compiled.positional else names
    values = []  # column by column: one map() per converted column, not a generator per value
    for key in keys:
        convert = table.c[key].type.dialect_impl(dialect).bind_processor(dialect)
        column = [row[key] for row in rows]
        values.append(column if convert is None else list(map(convert, column)))
    params: list[Any] = list(zip(*values, strict=True))
    sql = str(compiled)
    if not compiled.positional:
        return [(sql, [dict(zip(keys, row, strict=True)) for row in params])]
    statements: list[tuple[str, list[Any]]] = []
    per = max(1, min(ROWS_PER_INSERT, _MAX_VARIABLES // len(keys)))
    whole = len(params) - len(params) % per
    if whole > per:  # SQLite: `per` rows a statement (why: ROWS_PER_INSERT)
        head, values_kw, group = sql.partition(" VALUES ")
        flat = list(chain.from_iterable(params[:whole]))
        step = per * len(keys)
        statements.append((head + values_kw + ", ".join([group] * per),
                           [tuple(flat[i:i + step]) for i in range(0, len(flat), step)]))
    else:
        whole = 0
    if whole < len(params):
        statements.append((sql, params[whole:]))
    return statements


COPY_FROM = 500
"""PostgreSQL: from this many rows `insert_rows` and the sales import write by COPY (`copy_rows`);
fewer (an HTTP API batch, the end of a file) by an INSERT, which costs less for a few rows than
COPY's own statement and stream."""


def copy_rows(conn: Connection, table: Table, rows: Sequence[Mapping[str, Any]]) -> None:
    """PostgreSQL: many rows (all with the keys of the first) into `table` by `COPY … FROM STDIN`, in
    the connection's transaction: what `conn.execute(table.insert(), rows)` stores, value for value
    (each value through its column type's own bind processor, then psycopg's own adaptation, as an
    INSERT's parameters), and what it raises: a driver's error is SQLAlchemy's (`IntegrityError`
    for a taken key, which the HTTP API's retry of a concurrent import catches).

    An INSERT of many rows goes through psycopg's pipeline one row at a time, in Python (200,000
    sales: ~20 s of the import's 48 s under the profiler); COPY sends them as one stream."""
    if not rows:
        return
    dialect = conn.dialect
    names = list(rows[0])
    columns = []
    for name in names:
        convert = table.c[name].type.dialect_impl(dialect).bind_processor(dialect)
        column = [row[name] for row in rows]
        columns.append(column if convert is None else list(map(convert, column)))
    quote = dialect.identifier_preparer.quote
    sql = f"COPY {quote(table.name)} ({', '.join(map(quote, names))}) FROM STDIN"
    dbapi = conn.connection.dbapi_connection
    assert dbapi is not None  # a connection in use has its driver's connection
    try:
        with dbapi.cursor() as cursor, cursor.copy(sql) as copy:  # type: ignore[attr-defined]  # psycopg's
            for row in zip(*columns, strict=True):
                copy.write_row(row)
    except dialect.loaded_dbapi.Error as exc:
        raise DBAPIError.instance(sql, None, exc, dialect.loaded_dbapi.Error) from exc


class json_object(GenericFunction[Any]):  # noqa: N801 (an SQL function, named as one)
    """A JSON object built by the database from (key, SQL value) pairs, in that order: SQLite's
    `json_object`, PostgreSQL's `json_build_object`. A NULL value is JSON null. For rows written
    by INSERT … SELECT whose JSON column is read back as a dict (`models.contests._prize_entries`):
    the same dict as the one `json.dumps` would have stored (the text differs by its spaces)."""

    type = JSON()
    inherit_cache = True
    name = "json_object"

    def __init__(self, *pairs: tuple[str, Any]) -> None:
        args: list[Any] = []
        for key, value in pairs:
            args += [literal_key(key), value]
        super().__init__(*args)


def literal_key(key: str) -> Any:
    """A JSON key as an SQL string literal (rendered inline: a key is never user data)."""
    from sqlalchemy import literal_column

    return literal_column("'" + key.replace("'", "''") + "'")


@compiles(json_object, "postgresql")
def _json_build_object(element: json_object, compiler: SQLCompiler, **kw: Any) -> str:
    return f"json_build_object({compiler.process(element.clauses, **kw)})"
