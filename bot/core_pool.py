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
import logging
import multiprocessing
import threading
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, TypeVar

from sqlalchemy import Engine

T = TypeVar("T")
_pools: dict[int, ThreadPoolExecutor] = {}
_lock = threading.Lock()
log = logging.getLogger("mianzi.core")


def pool_for(engine: Engine) -> ThreadPoolExecutor:
    with _lock:
        found = _pools.get(id(engine))
        if found is None:
            workers = 1 if engine.dialect.name == "sqlite" else 8
            found = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="core")
            _pools[id(engine)] = found
        return found


async def run(engine: Engine, fn: Callable[..., T], *args: object) -> T:
    return await asyncio.get_running_loop().run_in_executor(pool_for(engine), fn, *args)


class CoreProcess:
    """One child process that runs `fn(engine, *args)` for the parent, on the database at `url`.

    `fn` and its arguments cross a pipe, so they must be picklable (module-level functions,
    dataclasses). The child is spawned, not forked: the parent has threads (the event loop's
    helpers, the scheduler) that a fork would copy in an unknown state. If the child dies, the
    call fails (the caller apologises to the user) and the next call starts a new child.
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self._pool: ProcessPoolExecutor | None = None
        self._lock = threading.Lock()

    def _executor(self) -> ProcessPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"),
                                                 initializer=_start_child, initargs=(self.url,))
            return self._pool

    async def start(self) -> None:
        """Spawn the child and open its database now, so that the first message does not wait for it."""
        await self.call(_ready)

    async def call(self, fn: Callable[..., T], *args: Any) -> T:
        pool = self._executor()
        try:
            return await asyncio.get_running_loop().run_in_executor(pool, _in_child, fn, args)
        except BrokenProcessPool:
            log.error("the core process died; a new one starts with the next message")
            with self._lock:
                if self._pool is pool:
                    self._pool = None
            pool.shutdown(wait=False)
            raise

    def stop(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)


_child_url: str | None = None


def _start_child(url: str) -> None:
    global _child_url
    _child_url = url
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s [core]: %(message)s")


def _in_child(fn: Callable[..., T], args: tuple[Any, ...]) -> T:
    from bot import context

    assert _child_url is not None
    return fn(context.engine_for(_child_url), *args)


def _ready(engine: Engine) -> bool:
    with engine.connect():
        pass
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
