"""What every part of the dealer page shares: the settings, the database, the pages, the sessions."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from sqlalchemy import Engine
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool

from bot.dealer.access import Access
from bot.dealer.pages import Pages
from bot.settings import Settings
from bot.web.session import WebSessions
from models.db import session_scope

T = TypeVar("T")


@dataclass(frozen=True)
class Site:
    settings: Settings
    engine: Engine
    pages: Pages
    sessions: WebSessions
    access: Access

    async def run(self, work: Callable[[Session], T]) -> T:
        """`work(session)` in a worker thread, in one transaction (committed unless it raises)."""

        def run() -> T:
            with session_scope(self.engine) as session:
                return work(session)

        return await run_in_threadpool(run)
