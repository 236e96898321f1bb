"""Where blocking database work of chat messages runs.

- PostgreSQL: a few threads side by side.
- SQLite: one thread. SQLite has one writer at a time and its busy handler sleeps between
  retries, so threads queueing for the write lock turn into long tails (measured: p99 near 1 s at
  32 requests in flight). Run one after another they finish sooner.
- Or, with `MIANZI_CORE_PROCESS=1`, one process of its own (`CoreProcess`). In one process the
  web loop and the answering thread share the interpreter lock: at 250 `/rank`s a second the
  answering thread, which every message waits for, spent more than half its time waiting for
  that lock rather than working (per-thread CPU times in /proc against py-spy's samples). In a
  process of its own it has a core to itself.
"""

from __future__ import annotations

import asyncio
import gc
import itertools
import logging
import multiprocessing
import os
import pickle
import select
import socket
import struct
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, InvalidStateError, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from multiprocessing.connection import Connection
from typing import Any, Protocol, TypeVar

from sqlalchemy import Engine

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])
_pools: dict[int, ThreadPoolExecutor] = {}
_lock = threading.Lock()
log = logging.getLogger("mianzi.core")


def pool_for(engine: Engine) -> ThreadPoolExecutor:
    """The threads answering on `engine`, shared by every channel: one on SQLite, eight on PostgreSQL."""
    with _lock:
        found = _pools.get(id(engine))
        if found is None:
            workers = 1 if engine.dialect.name == "sqlite" else 8
            found = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="core")
            _pools[id(engine)] = found
        return found


async def run(engine: Engine, fn: Callable[..., T], *args: object) -> T:
    """`fn(*args)` on the engine's threads (blocking work of the web process that is not an answer)."""
    return await asyncio.get_running_loop().run_in_executor(pool_for(engine), fn, *args)


class Runner(Protocol):
    """Where the chat core runs, behind one calling convention: `await runner.call(fn, *args)` runs
    `fn(engine, *args)` there and returns its result (or raises its exception). Channels hold a
    runner and never ask which one: a dead core process raises `BrokenProcessPool`, which they
    answer with the apology, and the next call starts a new one."""

    async def start(self) -> None: ...

    async def call(self, fn: Callable[..., T], *args: Any) -> T: ...

    def keep(self, value: T) -> T:
        """`value` (never changed: a frozen dataclass), marked to cross to the core once rather than
        with every call that passes it (the process's `ChatConfig`); returns it."""
        ...

    def stop(self) -> None: ...


class ThreadRunner:
    """The core in a thread of this process (`pool_for`): for PostgreSQL (more `serve` processes
    scale it) and one-core hosts."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    async def start(self) -> None:
        """Nothing to start: the threads come with the first call."""

    async def call(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(pool_for(self.engine), fn, self.engine, *args)

    def keep(self, value: T) -> T:
        """Nothing crosses: the value is passed as it is."""
        return value

    def stop(self) -> None:
        """The threads are shared by every runner on the engine and end with the process."""


class CoreProcess:
    """One child process that runs `fn(engine, *args)` for the parent, on the database at `url`.

    `fn` and its arguments cross a pipe, so they must be picklable (module-level functions,
    dataclasses). The child is spawned, not forked: the parent has threads (the event loop's
    helpers, the scheduler) that a fork would copy in an unknown state. If the child dies, the
    calls waiting for it fail with `BrokenProcessPool` (the caller apologises to the user) and
    the next call starts a new child.

    Calls go straight down a pipe and one thread reads the answers: `ProcessPoolExecutor` hands
    each call through two threads of its own on the way out and one on the way back, and on a
    busy server every hand-over waits for the interpreter lock (a third of the web process's time
    at 500 WeChat messages a second).
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self._child: _Child | None = None
        self._lock = threading.Lock()
        self._kept: dict[int, tuple[Any, int]] = {}  # id(value) → (value, its key): `keep`

    def keep(self, value: T) -> T:
        """Calls passing `value` itself send its key instead; each child gets the value once, before
        the first call that needs it. Pickling each call's `ChatConfig` was 8% of the web process's
        time on a WeChat `排行`."""
        with self._lock:
            if id(value) not in self._kept:
                self._kept[id(value)] = (value, len(self._kept))
        return value

    def _current(self) -> _Child:
        with self._lock:
            if self._child is None:
                self._child = _Child(self.url, self._kept)
            return self._child

    async def start(self) -> None:
        """Spawn the child and open its database now, so that the first message does not wait for it."""
        await self.call(_ready)

    async def call(self, fn: Callable[..., T], *args: Any) -> T:
        child = self._current()
        try:
            return await child.call(fn, args)  # type: ignore[no-any-return]  # fn's own result
        except BrokenProcessPool:
            log.error("the core process died; a new one starts with the next message")
            with self._lock:
                if self._child is child:
                    self._child = None
            raise

    def stop(self) -> None:
        with self._lock:
            child, self._child = self._child, None
        if child is not None:
            child.stop()


class _Child:
    """The process, its ends of the two pipes, the calls it has not answered yet, and who reads the answers.

    Two pipes, each answered on itself. The loop's pipe serves calls from the event loop that
    first called (`home`: the server's one loop): its answers are read by that loop itself
    (`add_reader`) and set its futures directly. The thread's pipe serves calls from any other
    loop or thread, read by a thread of its own (`_read`) that hands each answer over to its
    caller's loop. The hand-over cost the web process a fifth of its CPU on a WeChat `排行` (the
    reading thread, its turn at the interpreter lock, the wake-up of the loop, the two futures):
    in the loop an answer costs one callback.
    """

    def __init__(self, url: str, kept: dict[int, tuple[Any, int]] | None = None) -> None:
        context = multiprocessing.get_context("spawn")
        self._kept = kept if kept is not None else {}  # `CoreProcess.keep`'s values; `_sent`: (pipe, key) sent
        self._sent: set[tuple[int, int]] = set()
        self._conn, theirs = context.Pipe()  # the thread's pipe
        self._home_conn, home_theirs = context.Pipe()  # the loop's pipe
        self.process = context.Process(target=_child_main, args=(url, theirs, home_theirs), name="mianzi-core",
                                       daemon=True)
        self.process.start()
        theirs.close()
        home_theirs.close()
        self._pending: dict[int, Future[Any]] = {}
        self._home_pending: dict[int, asyncio.Future[Any]] = {}
        self._home: asyncio.AbstractEventLoop | None = None  # the loop reading `_home_conn`, once one called
        self._ids = itertools.count()
        self._lock = threading.Lock()  # one writer on a pipe at a time; `_pending` and `_broken` with it
        self._out = (_Outbox(self._conn, self._lock), _Outbox(self._home_conn, self._lock))
        self._broken = False
        threading.Thread(target=self._read, name="core-answers", daemon=True).start()

    async def call(self, fn: Callable[..., Any], args: tuple[Any, ...]) -> Any:
        loop = asyncio.get_running_loop()
        with self._lock:
            if self._home is None and not self._broken:
                self._home = loop
                loop.add_reader(self._home_conn.fileno(), self._read_home)
        if loop is not self._home:
            return await asyncio.wrap_future(self.submit(fn, args))
        future: asyncio.Future[Any] = loop.create_future()
        with self._lock:
            if self._broken:
                raise BrokenProcessPool("the core process is gone")
            call = next(self._ids)
            self._home_pending[call] = future
            try:
                self._send(1, call, fn, args)
            except OSError:
                del self._home_pending[call]
                raise BrokenProcessPool("the core process is gone") from None
            except BaseException:
                del self._home_pending[call]
                raise
        return await future

    def submit(self, fn: Callable[..., Any], args: tuple[Any, ...]) -> Future[Any]:
        """The call on the thread's pipe: its answer settles the returned future from `_read`."""
        future: Future[Any] = Future()
        with self._lock:
            if self._broken:
                raise BrokenProcessPool("the core process is gone")
            call = next(self._ids)
            self._pending[call] = future
            try:  # never waits: what the pipe cannot take now is sent by `_Outbox`'s thread
                self._send(0, call, fn, args)
            except OSError:
                del self._pending[call]
                raise BrokenProcessPool("the core process is gone") from None
            except BaseException:  # could not be pickled: nothing was sent
                del self._pending[call]
                raise
        return future

    def _send(self, pipe: int, call: int, fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
        """The call as the child reads it: (call, fn, args, kept), the kept values among `args` as
        their keys and `kept` their places; a key new to this pipe goes first, with its value (on
        the same pipe: the child reads the two pipes in no set order). With `_lock` held.

        Plain `pickle`, not multiprocessing's `ForkingPickler` (which copies its reducer table for
        every message): nothing crossing here is a socket or a pipe."""
        out = self._out[pipe]
        kept: list[tuple[int, int]] = []
        if self._kept:
            sent = list(args)
            for place, arg in enumerate(args):
                found = self._kept.get(id(arg))
                if found is not None and found[0] is arg:
                    key = found[1]
                    if (pipe, key) not in self._sent:
                        out.put(pickle.dumps((_KEEP, key, arg), pickle.HIGHEST_PROTOCOL))
                        self._sent.add((pipe, key))
                    sent[place] = key
                    kept.append((place, key))
            args = tuple(sent)
        out.put(pickle.dumps((call, fn, args, tuple(kept)), pickle.HIGHEST_PROTOCOL))

    def _read_home(self) -> None:
        """The home loop's reader: one answer (the loop calls again while more are waiting)."""
        try:
            call, ok, value = pickle.loads(self._home_conn.recv_bytes())
        except (EOFError, OSError):
            self._gone()
            return
        future = self._home_pending.pop(call, None)  # only this loop's thread touches these entries' futures
        if future is not None and not future.done():  # not cancelled by its caller meanwhile
            try:
                future.set_result(value) if ok else future.set_exception(value)
            except TypeError:  # StopIteration, which an asyncio future refuses
                future.set_exception(RuntimeError(f"the core's call raised {value!r}"))

    def _read(self) -> None:
        while True:
            try:
                call, ok, value = pickle.loads(self._conn.recv_bytes())
            except (EOFError, OSError):
                break
            with self._lock:
                future = self._pending.pop(call, None)
            if future is not None:
                _settle(future, value, ok)
        self._gone()

    def _gone(self) -> None:
        """The child is gone (or stopped): every call still waiting fails, on its own loop or thread."""
        with self._lock:
            self._broken = True
            for out in self._out:
                out.close()
            waiting, self._pending = self._pending, {}
            home_waiting, self._home_pending = self._home_pending, {}
            home, self._home = self._home, None
        for future in waiting.values():
            _settle(future, BrokenProcessPool("the core process died"), False)
        if home is not None:
            _on_loop(home, self._unhook, self._home_conn.fileno(), home, home_waiting)

    @staticmethod
    def _unhook(fd: int, loop: asyncio.AbstractEventLoop, waiting: dict[int, asyncio.Future[Any]]) -> None:
        loop.remove_reader(fd)
        for future in waiting.values():
            if not future.done():
                future.set_exception(BrokenProcessPool("the core process died"))

    def stop(self) -> None:
        """Let the child finish what it was given, then end it."""
        with self._lock:
            if not self._broken:
                try:
                    self._out[0].put(pickle.dumps(None))
                except OSError:
                    pass
        self.process.join(STOP_TIMEOUT)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()
        self._gone()
        self._conn.close()
        self._home_conn.close()


class _Outbox:
    """The parent's sending end of one pipe, whose writes never wait: a message goes straight into
    the pipe if it takes it whole; else what it did not take waits here, in order with the messages
    after it, and a thread of its own writes them as the child reads (the child reads its pipes only
    between calls: a long call with many messages behind it could fill the pipe). `lock` is held by
    whoever calls `put`, and guards what waits here.

    The frames are `Connection.send_bytes`'s (the child reads them as it does), written with
    `MSG_DONTWAIT` on a socket over the pipe's descriptor: the descriptor itself stays blocking for
    the parent's reads."""

    def __init__(self, conn: Connection, lock: threading.Lock) -> None:
        self._socket = socket.socket(fileno=os.dup(conn.fileno()))
        self._lock = lock
        self._waiting = bytearray()  # written by `_flush`, not yet taken by the pipe
        self._flushing = False
        self._closed = False

    def put(self, data: bytes) -> None:
        """`data` as one message; raises `OSError` if the pipe is gone. With `lock` held."""
        frame = _frame(data)
        if self._flushing:
            self._waiting += frame
            return
        try:
            sent = self._socket.send(frame, socket.MSG_DONTWAIT)
        except BlockingIOError:
            sent = 0
        if sent < len(frame):
            self._waiting += memoryview(frame)[sent:]
            self._flushing = True
            threading.Thread(target=self._flush, name="core-calls-waiting", daemon=True).start()

    def _flush(self) -> None:
        while True:
            with self._lock:
                chunk, self._waiting = bytes(self._waiting), bytearray()
                if not chunk or self._closed:
                    self._stop_flushing()
                    return
            try:
                self._socket.sendall(chunk)  # waits for the child: only this thread does
            except OSError:  # the child is gone: its answers' reader fails the calls waiting
                with self._lock:
                    self._waiting.clear()
                    self._stop_flushing()
                return

    def _stop_flushing(self) -> None:
        self._flushing = False
        if self._closed:
            self._socket.close()

    def close(self) -> None:
        """No more `put`s (the child is gone or stopped); with `lock` held. The socket closes now, or
        when `_flush` ends if it is writing."""
        self._closed = True
        if not self._flushing:
            self._socket.close()


def _frame(data: bytes) -> bytes:
    """`data` framed as `Connection.send_bytes` does: its length (4 bytes, or -1 then 8), then it."""
    n = len(data)
    if n > 0x7FFFFFFF:
        return struct.pack("!iQ", -1, n) + data
    return struct.pack("!i", n) + data


class _Inbox:
    """The child's reading end of one pipe: every whole message waiting in it, read at once without
    waiting (`read`), the rest of a message that has not all arrived kept for the next time."""

    def __init__(self, conn: Connection, pipe: int) -> None:
        self.fd = conn.fileno()
        self.pipe = pipe
        self.open = True
        self._socket = socket.socket(fileno=os.dup(self.fd))
        self._buffer = bytearray()

    def read(self, into: deque[Any]) -> None:
        """(pipe, message) of each whole message waiting, appended to `into`; `open` False once the
        parent's end is closed."""
        buffer = self._buffer
        while True:
            try:
                data = self._socket.recv(_READ_SIZE, socket.MSG_DONTWAIT)
            except BlockingIOError:
                break
            except OSError:
                data = b""
            if not data:
                self.open = False
                break
            buffer += data
            if len(data) < _READ_SIZE:
                break
        at, end = 0, len(buffer)
        while end - at >= 4:
            (size,) = struct.unpack_from("!i", buffer, at)
            head = 4
            if size == -1:
                if end - at < 12:
                    break
                (size,) = struct.unpack_from("!Q", buffer, at + 4)
                head = 12
            if end - at - head < size:
                break
            into.append((self.pipe, pickle.loads(buffer[at + head:at + head + size])))
            at += head + size
        del buffer[:at]

    def close(self) -> None:
        self._socket.close()


_READ_SIZE = 1 << 16


def _on_loop(loop: asyncio.AbstractEventLoop, fn: Callable[..., None], *args: Any) -> None:
    """`fn(*args)` on `loop`'s thread: now if this is it (or the loop is not running), else soon; not
    at all once the loop is closed (its reader and futures went with it)."""
    if loop.is_closed():
        return
    try:
        running = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    if running is loop or not loop.is_running():
        fn(*args)
    else:
        try:
            loop.call_soon_threadsafe(fn, *args)
        except RuntimeError:  # closed meanwhile
            pass


def _settle(future: Future[Any], value: Any, ok: bool) -> None:
    try:
        future.set_result(value) if ok else future.set_exception(value)
    except InvalidStateError:  # the caller gave up on it (cancelled)
        pass


STOP_TIMEOUT = 10.0
_KEEP = -1  # a message that is no call: (_KEEP, key, value), a kept value for the calls after it
_child_url: str | None = None


def _start_child(url: str) -> None:
    global _child_url
    _child_url = url
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s [core]: %(message)s")


def _child_main(url: str, conn: Connection, home: Connection) -> None:
    """The core process: calls from the two pipes (`_Child`), one after another, each answer back
    down the pipe it came from.

    It reads its pipes itself, between calls: everything waiting in them at once (`_Inbox`), and
    waits on them (`poll`) only when nothing is left to do. The parent's writes never wait for it
    (`_Outbox`). A thread reading them as calls arrived cost the core 8-9% of its CPU on a WeChat
    `排行`. The thread's pipe ending (or a None on it) ends the process, after the calls before it.
    """
    _start_child(url)
    conns = (conn, home)
    inboxes = {inbox.fd: inbox for inbox in (_Inbox(conn, 0), _Inbox(home, 1))}
    poller = select.poll()
    for fd in inboxes:
        poller.register(fd, select.POLLIN)
    waiting: deque[Any] = deque()  # (pipe, message) read, not run yet; None: the end

    def take(timeout: int | None) -> None:
        """Read what the pipes hold, waiting up to `timeout` ms (None: until something comes)."""
        for fd, _ in poller.poll(timeout):
            inbox = inboxes[fd]
            inbox.read(waiting)
            if not inbox.open:
                poller.unregister(fd)
                del inboxes[fd]
                inbox.close()
                if inbox.pipe == 0:
                    waiting.append(None)

    kept: dict[int, Any] = {}
    while True:
        take(0 if waiting else None)
        if not waiting:
            if not inboxes:
                break
            continue
        entry = waiting.popleft()
        if entry is None or entry[1] is None:
            break
        pipe, item = entry
        if item[0] == _KEEP:
            kept[item[1]] = item[2]
            continue
        first = (pipe, *_resolved(item, kept))
        batch = [first]
        if _groupable(first[2]):
            while waiting and len(batch) < GROUP_MAX:
                following = waiting[0]
                if following is None or following[1] is None:
                    break
                if following[1][0] == _KEEP:
                    kept[following[1][1]] = following[1][2]
                elif _groupable(following[1][1]):
                    batch.append((following[0], *_resolved(following[1], kept)))
                else:
                    break
                waiting.popleft()
        for pipe, data in _run_batch(batch):
            conns[pipe].send_bytes(data)


GROUP_MAX = 8
"""Calls answered in one transaction at most (`_run_batch`): those waiting when the first starts."""
_GROUPABLE = "_mianzi_groupable"


def groupable(fn: F) -> F:
    """Marks `fn` as one the core process may run with others waiting in one SQLite transaction
    (`models.db.grouped`): its writes all go through `session_scope` on the held connection, and
    what it returns or raises is settled there (it is sent only once the group committed; a group
    that fails runs each call again alone). The answer paths of the channels are."""
    setattr(fn, _GROUPABLE, True)
    return fn


def _groupable(fn: Any) -> bool:
    return getattr(fn, _GROUPABLE, False) is True


def _resolved(item: tuple[Any, ...], kept: dict[int, Any]) -> tuple[int, Callable[..., Any], tuple[Any, ...]]:
    """(call, fn, args) of a call as read from the pipe, its kept values in place."""
    call, fn, args, places = item
    if places:
        args = list(args)
        for place, key in places:
            args[place] = kept[key]
    return call, fn, tuple(args)


def _run_batch(batch: list[tuple[int, int, Callable[..., Any], tuple[Any, ...]]]) -> list[tuple[int, bytes]]:
    """The answers of (pipe, call, fn, args), pickled for their pipes. Two or more: one SQLite
    transaction for them all (`models.db.grouped`), the answers kept until it committed; if it did
    not, nothing of it was kept and each runs again alone."""
    if len(batch) > 1:
        from bot import context
        from models.db import grouped

        assert _child_url is not None
        with grouped(context.engine_for(_child_url)) as commit:
            if commit is not None:
                answers = [(pipe, _answer(call, fn, args)) for pipe, call, fn, args in batch]
                if commit():
                    return answers
    return [(pipe, _answer(call, fn, args)) for pipe, call, fn, args in batch]


def _answer(call: int, fn: Callable[..., Any], args: tuple[Any, ...]) -> bytes:
    try:
        answer: tuple[Any, ...] = (call, True, _in_child(fn, args))
    except Exception as exc:
        answer = (call, False, exc)
    try:
        return pickle.dumps(answer, pickle.HIGHEST_PROTOCOL)
    except (pickle.PicklingError, TypeError, AttributeError) as exc:  # an answer or error that cannot cross
        return pickle.dumps((call, False, RuntimeError(f"the core's answer could not be sent: {exc!r}")))


def _in_child(fn: Callable[..., T], args: tuple[Any, ...]) -> T:
    from bot import context

    assert _child_url is not None
    return fn(context.engine_for(_child_url), *args)


def _ready(engine: Engine) -> bool:
    """The child's start: its database connection opened and held for every call (one after
    another on this thread: `models.db.hold_connection`, on SQLite, with the log's checkpoints
    left to a thread: `models.db.checkpoint_apart`), the modules the answers need imported (else
    the first message pays for them: a second on the bench machine), then its heap frozen."""
    from models.db import checkpoint_apart, hold_connection

    if hold_connection(engine):
        checkpoint_apart(engine)  # no message's commit waits for the log to be copied into the database
    else:
        with engine.connect():
            pass
    import bot.channels.wechat.inbound  # noqa: F401  (the answer paths of every channel: the core and the handlers)
    import bot.core.conversation  # noqa: F401
    freeze_heap()
    return True


def freeze_heap() -> None:
    """Once started: collect, then leave every object alive now out of all later collections.

    The modules, the engine and their caches are some 100,000 objects that live as long as the
    process; each full collection walks them all (measured: 50-85 ms on the 2-core bench machine),
    and every message that arrives meanwhile waits. Frozen (`gc.freeze`), they are never walked.
    """
    gc.collect()
    gc.freeze()
