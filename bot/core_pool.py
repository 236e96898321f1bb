"""Where blocking database work of chat messages runs: one thread on SQLite, a few on PostgreSQL.

SQLite has one writer at a time and its busy handler sleeps between retries, so threads queueing
for the write lock turn into long tails (measured: p99 near 1 s at 32 requests in flight). Run one
after another on one thread they finish sooner. PostgreSQL takes them side by side.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from sqlalchemy import Engine

T = TypeVar("T")
_pools: dict[int, ThreadPoolExecutor] = {}
_lock = threading.Lock()


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
