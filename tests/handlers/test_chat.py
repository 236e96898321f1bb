"""The conversation through the terminal channel: binding, roles, privacy, both languages, bad input.

(The Telegram and WeChat tests drive the same handlers through their webhooks.)
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, func, select
from sqlmodel import Session

from bot.channels.console import converse
from models.db import session_scope
from models.identities import new_invite
from models.tables import ChatIdentity, Invite, Partner, Sale
from tests.support import console
from tests.support.console import CONFIG, NOW, ask, bound


@pytest.fixture
def program(engine: Engine) -> dict[str, int]:
    return console.program(engine)


def identities(engine: Engine) -> int:
    with Session(engine) as s:
        return s.execute(select(func.count()).select_from(ChatIdentity)).scalar_one()


def test_unbound_people_are_told_how_to_bind(engine: Engine, program: dict) -> None:
    assert "绑定 邀请码" in ask(engine, "stranger", "排行")
    assert "绑定 邀请码" in ask(engine, "stranger", "/help")
    assert "绑定 邀请码" in ask(engine, "stranger", "/start")
    assert identities(engine) == 0


def test_invites_single_use_expiry_and_typos(engine: Engine, program: dict) -> None:
    with session_scope(engine) as s:
        p1 = s.execute(select(Partner).where(Partner.code == "P1")).scalar_one()
        fresh = new_invite(s, p1, now=NOW).code
        old = new_invite(s, p1, now=NOW - timedelta(days=8)).code
    assert "邀请码不正确" in ask(engine, "a", "绑定 NOTACODE")
    assert "已过期" in ask(engine, "a", f"/bind {old}")
    assert identities(engine) == 0
    assert "绑定成功" in ask(engine, "a", f"/start {fresh.lower()}")  # case does not matter
    assert "已经用过了" in ask(engine, "b", f"绑定 {fresh}")
    assert identities(engine) == 1
    with Session(engine) as s:
        assert s.execute(select(Invite).where(Invite.code == old)).scalar_one().used_at is None


def test_rank_shows_top_own_line_and_gaps(engine: Engine, program: dict) -> None:
    me = bound(engine, "P4")
    reply = ask(engine, me, "排行")
    assert "🥇 经销商1  ¥50,000.00 · 金牌" in reply
    assert "🥈 经销商2" in reply and "🥉 经销商3" in reply
    assert "您：第 4 名 / 共 6 名，¥20,000.00" in reply
    assert "距第 3 名还差 ¥10,000.00" in reply
    assert "再多 ¥10,000.00 即可达到银牌" in reply
    assert "新人" not in reply  # ineligible: not on the public board


def test_bottom_of_the_ranking_stays_private(engine: Engine, program: dict) -> None:
    last = bound(engine, "P5")
    first = bound(engine, "P1")
    assert "经销商5" not in ask(engine, first, "/rank")
    mine = ask(engine, last, "/rank")
    assert "第 5 名" in mine  # the partner sees their own place
    assert "经销商4" not in mine  # but not who is around them below the top


def test_ineligible_partner_is_told_why(engine: Engine, program: dict) -> None:
    newbie = bound(engine, "P6")
    reply = ask(engine, newbie, "排行")
    assert "暂不参与排名：加入未满 30 天" in reply and "¥99,999.00" in reply


def test_english_and_language_switch(engine: Engine, program: dict) -> None:
    me = bound(engine, "P2")
    assert ask(engine, me, "/lang en") == "OK, I will answer in English from now on."
    reply = ask(engine, me, "/rank")
    assert "You: #2 of 6, ¥40,000.00" in reply and "more to reach #1" in reply
    assert "revenue" in reply and "running" in reply
    assert ask(engine, me, "/lang fr").startswith("Choose a language")
    assert ask(engine, me, "语言 zh") == "好的，之后我会用中文回复您。"
    assert "您：第 2 名" in ask(engine, me, "排行")


def test_captain_sees_members_dealer_does_not(engine: Engine, program: dict) -> None:
    captain = bound(engine, "CAP")
    dealer = bound(engine, "P2")
    west = bound(engine, "P4")
    cap_view = ask(engine, captain, "团队")
    for name in ("经销商1", "经销商2", "经销商3", "王队长"):
        assert name in cap_view
    assert "经销商4" not in cap_view
    dealer_view = ask(engine, dealer, "/team")
    assert "您的个人销售额：¥40,000.00，占团队 33.1%" in dealer_view and "经销商1" not in dealer_view and "经销商3" not in dealer_view
    west_view = ask(engine, west, "/team")
    assert "WEST" in west_view and "经销商1" not in west_view and "王队长" not in west_view


def test_admin_sees_everything(engine: Engine, program: dict) -> None:
    boss = bound(engine, "BOSS")
    teams = ask(engine, boss, "/team")
    assert "EAST" in teams and "WEST" in teams
    east = ask(engine, boss, "/team EAST")
    assert "经销商1" in east and "王队长" in east
    ranking = ask(engine, boss, f"/rank {program['team']}")
    assert "🥇 WEST  ¥129,999.00" in ranking and "🥈 EAST" in ranking


def test_contests_explain_rules_and_tie_rule(engine: Engine, program: dict) -> None:
    me = bound(engine, "P1")
    reply = ask(engine, me, "比赛")
    assert "11月销售冠军" in reply and "加入满 30 天" in reply and "第 1 名 500 积分" in reply
    assert "先达到该成绩者在前" in reply and "1、2、2、4" in reply and "前 3 名" in reply
    assert "金牌（≥ ¥45,000.00）300 积分" in reply


def test_me_and_honors(engine: Engine, program: dict) -> None:
    from models import contests

    me = bound(engine, "P1")
    with session_scope(engine) as s:
        contests.close(s, program["solo"], datetime(2026, 12, 1, tzinfo=UTC))
    reply = ask(engine, me, "我的")
    assert "积分余额：800" in reply and "+800" in reply and "第 1 名" in reply
    honors = ask(engine, me, "荣誉")
    assert "🥇 经销商1" in honors and "经销商5" not in honors


@pytest.mark.parametrize("text", [
    "x" * 10_000, "'; DROP TABLE partner; --", "/rank'; DELETE FROM sale; --", "\u200b\u200b", "🤖🤖🤖",
    "/unknowncommand", "排行榜是什么", "\x00\x01", "/rank 99999",
])
def test_bad_input_gets_a_short_answer_and_changes_nothing(engine: Engine, program: dict, text: str) -> None:
    me = bound(engine, "P1")
    reply = ask(engine, me, text)
    assert reply and len(reply) < 500 and "Traceback" not in reply
    with Session(engine) as s:
        assert s.execute(select(func.count()).select_from(Sale)).scalar_one() == 7
        assert s.execute(select(func.count()).select_from(Partner)).scalar_one() == 8


def test_no_text_and_unicode_oddities(engine: Engine, program: dict) -> None:
    me = bound(engine, "P1")
    assert "只能读懂文字" in ask(engine, me, None)
    assert "您：第 1 名" in ask(engine, me, "／ＲＡＮＫ")  # full-width, as typed on a Chinese keyboard
    assert "您：第 1 名" in ask(engine, me, "  排行  ")
    assert "您：第 1 名" in ask(engine, me, "/rank@MianziBot")


def test_broadcast_preview_confirm_and_refusal(engine: Engine, program: dict) -> None:
    from models.tables import Broadcast, Outbox

    dealer = bound(engine, "P1")
    bound(engine, "P2")
    boss = bound(engine, "BOSS")
    assert "仅限渠道经理" in ask(engine, dealer, "群发 大家好")
    preview = ask(engine, boss, "/broadcast region=华东 Training tonight at 8")
    assert "Broadcast preview (to 0 partners, segment: region=华东)" in preview
    preview = ask(engine, boss, "/broadcast Training tonight at 8")
    assert "to 3 partners" in preview and "Training tonight at 8" in preview
    with Session(engine) as s:
        assert s.execute(select(func.count()).select_from(Outbox)).scalar_one() == 0
        draft = s.execute(select(Broadcast).where(Broadcast.status == "draft").order_by(Broadcast.id.desc())).scalars().first()
    done = converse(engine, boss, f"bc:confirm:{draft.id}", CONFIG, NOW)  # the inline button
    assert f"Broadcast #{draft.id} is queued for 3 partners" in done
    assert "already sent" in converse(engine, boss, f"bc:cancel:{draft.id}", CONFIG, NOW)
    with Session(engine) as s:
        texts = s.execute(select(Outbox.payload)).scalars().all()
    assert len(texts) == 3 and all("Training tonight at 8" in p["text"] for p in texts)
    report = ask(engine, boss, f"/deliveries {draft.id}")
    assert f"Delivery report: #{draft.id}" in report
    assert "console: 0 sent, 3 pending, 0 failed, 0 blocked, 0 undeliverable" in report
    # WeChat style: reply 确认 to the latest draft; 取消 drops it
    ask(engine, boss, "群发 明天放假")
    assert "is queued" in ask(engine, boss, "确认")
    ask(engine, boss, "群发 作废的通知")
    assert "cancelled" in ask(engine, boss, "取消")
    assert "no broadcast waiting" in ask(engine, boss, "确认")
