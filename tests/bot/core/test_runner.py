"""`CoreProcess` on its own: answers, errors and many calls at once cross the pipe intact."""

from __future__ import annotations

import asyncio
import multiprocessing

import pytest
from sqlalchemy import Engine, text

from bot.core.runner import CoreProcess


def _count_partners(engine: Engine, label: str) -> tuple[str, int]:
    with engine.connect() as conn:
        return label, conn.execute(text("SELECT count(*) FROM partner")).scalar_one()


def _fail(engine: Engine, message: str) -> None:
    raise LookupError(message)


def test_answers_errors_and_many_calls_in_flight(db_url: str) -> None:
    before = set(multiprocessing.active_children())
    core = CoreProcess(db_url)

    async def scenario() -> None:
        await core.start()
        assert await core.call(_count_partners, "x") == ("x", 0)
        with pytest.raises(LookupError, match="no such thing"):  # the child's error, re-raised here
            await core.call(_fail, "no such thing")
        answers = await asyncio.gather(*(core.call(_count_partners, str(i)) for i in range(200)))
        assert answers == [(str(i), 0) for i in range(200)]  # each answer to its own call

    try:
        asyncio.run(scenario())
        assert len([p for p in multiprocessing.active_children() if p not in before]) == 1
    finally:
        core.stop()
    assert [p for p in multiprocessing.active_children() if p not in before] == []
