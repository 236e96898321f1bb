"""What every part of a set of web pages shares (the admin console, the dealer page): the settings,
the database, the pages, the sessions and the access rule — and the one way their routes touch the
database, `Site.run`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from sqlalchemy import Engine
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool

from bot.settings import Settings
from bot.web.session import WebSessions
from models.db import session_scope

T = TypeVar("T")
PagesT = TypeVar("PagesT")
AccessT = TypeVar("AccessT")


@dataclass(frozen=True)
class Site(Generic[PagesT, AccessT]):
    settings: Settings
    engine: Engine
    pages: PagesT
    sessions: WebSessions
    access: AccessT

    async def run(self, work: Callable[[Session], T]) -> T:
        """`work(session)` in a worker thread, in one transaction (committed unless it raises):
        the database is never touched from the event loop."""

        def run() -> T:
            with session_scope(self.engine) as session:
                return work(session)

        return await run_in_threadpool(run)
