"""The outbox side of a test: partners bound in bulk, a broadcast queued through the CLI, a delivery worker
drained, and what reached the fake and what the outbox says."""

from __future__ import annotations

import asyncio
from collections import Counter

from sqlalchemy import Engine, func, select
from sqlmodel import Session

from bot.delivery.worker import DeliveryWorker, Stats
from models.db import session_scope
from models.tables import ChatIdentity, Outbox, Partner
from models.values import utcnow
from tests.support import builders as b
from tests.support.cli_runner import mianzi
from tests.support.fake_wechat import Call


def drain(worker: DeliveryWorker) -> Stats:
    """Run `worker` until nothing is due, then close it (as `mianzi deliveries drain` does); its stats."""

    async def go() -> Stats:
        try:
            return await worker.drain()
        finally:
            await worker.close()

    return asyncio.run(go())


def members(engine: Engine, n: int, platform: str = "wecom", start: int = 0, **partner: str) -> list[str]:
    """n partners bound on WeCom as `Member0000`… (WeCom UserIDs, mixed case); returns the UserIDs."""
    now = utcnow()
    refs = [f"Member{i:04d}" if platform == "wecom" else f"oOpenId{i:021d}" for i in range(start, start + n)]
    with session_scope(engine) as s:
        b.partners(s, *({"code": f"{platform[:2].upper()}{i:04d}", **partner} for i in range(start, start + n)))
        codes = {f"{platform[:2].upper()}{i:04d}": ref for i, ref in zip(range(start, start + n), refs, strict=True)}
        for partner_row in s.execute(select(Partner).where(Partner.code.in_(list(codes)))).scalars():
            ref = codes[partner_row.code]
            s.add(ChatIdentity(partner_id=partner_row.id, platform=platform, user_ref=ref, chat_ref=ref,  # type: ignore[arg-type]
                               bound_at=now, last_seen_at=now))
    return refs


def broadcast(text: str) -> int:
    """`mianzi broadcast TEXT` to everyone; the broadcast's id."""
    ran = mianzi("broadcast", text, "--json")
    assert ran.code == 0, ran.err
    return int(ran.json()["id"])


def statuses(engine: Engine) -> dict[str, int]:
    """How many outbox rows are in each status."""
    with Session(engine) as s:
        return dict(s.execute(select(Outbox.status, func.count()).group_by(Outbox.status)).all())  # type: ignore[arg-type]


def content(call: Call) -> str:
    """The text of a WeCom `message/send` or `appchat/send` call."""
    return call.body["text"]["content"]


def each_once(calls: list[Call], refs: list[str]) -> bool:
    """Every member of `refs` named in exactly one of the calls, and no one else."""
    named = Counter(u for c in calls for u in c.users)
    return set(named) == set(refs) and set(named.values()) == {1}
