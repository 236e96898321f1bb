"""A chat user on the terminal channel: bound to a partner through a real invite, and what they are answered.

`program` is the conversation tests' program: two teams, a solo and a team contest.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Engine, select

from bot.channels.console import converse
from handlers.types import ChatConfig
from models.db import session_scope
from models.identities import new_invite
from models.tables import Partner
from tests.support import builders as b

CONFIG = ChatConfig(max_text=1000)
NOW = datetime(2026, 11, 20, 4, 0, tzinfo=UTC)  # mid-period: 12:00 in Shanghai


def program(engine: Engine) -> dict[str, int]:
    """Two teams; P1..P5 with falling revenue; P6 too new for the tenure rule; an admin."""
    with session_scope(engine) as s:
        b.partners(s, {"code": "CAP", "name": "王队长", "team": "EAST", "role": "captain"},
                   *({"code": f"P{i}", "name": f"经销商{i}", "team": "EAST" if i <= 3 else "WEST"} for i in range(1, 6)),
                   {"code": "P6", "name": "新人", "team": "WEST", "joined_on": "2026-11-01"},
                   {"code": "BOSS", "name": "孙经理", "role": "admin", "locale": "en"})
        b.sales(s, *({"id": f"s{i}", "partner": f"P{i}", "occurred_at": "2026-11-10T10:00",
                      "amount": str(60000 - i * 10000)} for i in range(1, 6)),
                {"id": "c1", "partner": "CAP", "occurred_at": "2026-11-11T10:00", "amount": "1000"},
                {"id": "n1", "partner": "P6", "occurred_at": "2026-11-11T10:00", "amount": "99999"})
        solo = b.contest(s, name="11月销售冠军", prizes="1=500,2=300,3=100", tiers="银牌=30000:100,金牌=45000:300",
                         min_tenure_days=30, top_n=3)
        team = b.contest(s, name="团队赛", scope="team")
        return {"solo": solo.id, "team": team.id}  # type: ignore[dict-item]


def bound(engine: Engine, code: str, user: str | None = None, now: datetime = NOW) -> str:
    """Bind a console user to partner `code` through a real invite; returns the user ref."""
    user = user or f"u-{code}"
    with session_scope(engine) as s:
        partner = s.execute(select(Partner).where(Partner.code == code)).scalar_one()
        invite = new_invite(s, partner, now=now).code
    reply = converse(engine, user, f"绑定 {invite}", CONFIG, now)
    assert "绑定成功" in reply or "linked" in reply, reply
    return user


def ask(engine: Engine, user: str, text: str | None, now: datetime = NOW) -> str:
    return converse(engine, user, text, CONFIG, now)  # type: ignore[arg-type]
