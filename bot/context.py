"""What every entry point shares: settings, the engine, and a migrated schema."""

from __future__ import annotations

from functools import lru_cache

from sqlalchemy import Engine

from bot.migrate import upgrade
from bot.settings import Settings, get_settings
from models.db import make_engine


@lru_cache
def engine_for(url: str) -> Engine:
    engine = make_engine(url)
    upgrade(engine)
    return engine


def engine(settings: Settings | None = None) -> Engine:
    return engine_for((settings or get_settings()).database_url)
