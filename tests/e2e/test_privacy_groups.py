"""Privacy in groups (issue 12): in a group the bot posts only what is public anyway; anything
personal goes to the asker privately and the group gets one short line.

Through the real doors: Telegram group updates POSTed to the webhook, what reached the group and
the private chat caught by the fake Bot API (including its 403 for a user who never opened a
private chat with the bot); WeCom group messages as encrypted callbacks naming their `ChatId`, the
replies delivered by the delivery worker to the fake WeCom API (`appchat/send` for the group,
`message/send` for the member).
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Iterator
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import Engine, select
from starlette.applications import Starlette

from bot.channels.registry import ceilings, push_senders
from bot.channels.wechat.wecom import wecom_routes
from bot.delivery.worker import DeliveryWorker
from bot.settings import Settings
from bot.web.app import create_app
from messages.render import t
from models import rewards
from models.db import session_scope
from models.tables import ChatIdentity, Partner, Team, TeamChat
from models.values import utcnow
from tests.support import builders as b
from tests.support.delivery import drain
from tests.support.fake_telegram import HEADERS, FakeBotApi, bot_api, sample, settings_for
from tests.support.fake_wechat import FakeWeixin, build_program, http_client, sample_xml, serve_fake
from tests.support.incentives import catalog, earn
from tests.support.live_app import live_app, loopback
from tests.support.wecom import encrypted
from tests.support.wecom import settings as wecom_settings

TG = {"CAP": 7200001, "P1": 7200002, "P4": 7200004, "BOSS": 7200009, "GUEST": 7200077}
WC = {"CAP": "WangDuizhang", "P1": "Jingxiao1", "P4": "Jingxiao4", "BOSS": "SunJingli", "GUEST": "Lumiao"}
GROUP = -1001234567890  # a Telegram supergroup
WECOM_GROUP = "wrkEastTeamChat01"
SENT = t("chat.sent_privately", "zh")


def program(engine: Engine, platform: str) -> dict[str, int]:
    """build_program's teams, contest and sales; an admin; points; a pending redemption; chat accounts."""
    build_program(engine)
    refs = TG if platform == "telegram" else WC
    with session_scope(engine) as s:
        b.partners(s, {"code": "BOSS", "name": "孙经理", "role": "admin"})
        catalog(s, {"sku": "MUG", "name_zh": "马克杯", "name_en": "Mug", "points": 100, "stock": 5})
        ids: dict[str, int] = dict(s.execute(select(Partner.code, Partner.id)).all())  # type: ignore[arg-type]
    earn(engine, ids["P1"], 4321)
    earn(engine, ids["P2"], 500)
    now = utcnow()
    with session_scope(engine) as s:
        rewards.redeem(s, ids["P2"], "MUG", now)
        for code in ("CAP", "P1", "P4", "BOSS"):
            s.add(ChatIdentity(partner_id=ids[code], platform=platform, user_ref=str(refs[code]),
                               chat_ref=str(refs[code]), bound_at=now - timedelta(days=1),
                               last_seen_at=now - timedelta(days=1)))
    return ids


def link(engine: Engine, platform: str, chat: str, team: str = "EAST") -> None:
    with session_scope(engine) as s:
        team_id = s.execute(select(Team.id).where(Team.code == team)).scalar_one()
        s.add(TeamChat(team_id=team_id, platform=platform, chat_ref=chat, linked_at=utcnow()))


# --- Telegram -----------------------------------------------------------------------------------------


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeBotApi]:
    yield from bot_api(monkeypatch)


@pytest.fixture
def tg(db_url: str, fake: FakeBotApi, engine: Engine) -> Iterator[httpx.Client]:
    program(engine, "telegram")
    with live_app(create_app(settings_for(fake), background=False)) as c:
        yield c


_updates = itertools.count(880_001)


def in_group(client: httpx.Client, fake: FakeBotApi, who: str, text: str,
             group: int = GROUP) -> tuple[list[str], list[dict]]:
    """`who` sends `text` in a Telegram group; returns (texts posted in the group, messages to them privately)."""
    update = copy.deepcopy(sample("group_command", update_id=next(_updates)))
    update["message"]["text"] = text
    update["message"].pop("entities")
    update["message"]["from"]["id"] = TG[who]
    update["message"]["chat"]["id"] = group
    before = len(fake.sent())
    assert client.post("/telegram/webhook", json=update, headers=HEADERS).status_code == 200
    new = fake.sent()[before:]
    assert {m["chat_id"] for m in new} <= {str(group), str(TG[who])}, new
    return [m["text"] for m in new if m["chat_id"] == str(group)], [m for m in new if m["chat_id"] == str(TG[who])]


# (who, what they send in the group, a piece of the private answer)
PERSONAL = [
    ("P1", "/me", "积分余额"),
    ("P1", "/rewards@mianzi_bot", "您的积分"),
    ("P1", "我的", "积分余额"),
    ("CAP", "/team", "经销商2"),  # a captain's member contributions, in a group not linked to the team
    ("BOSS", "/rewards", "经销商2（P2）"),  # the pending redemptions
    ("BOSS", "/adjust P1 +50 补发", "经销商1"),  # a name and a new balance
    ("BOSS", "调整积分 P1 +50 补发", "经销商1"),
    ("BOSS", "/approve 1", "马克杯"),
    ("BOSS", "/deliveries", ""),
    ("BOSS", "/broadcast 明天培训", "明天培训"),
    ("BOSS", "/team EAST", "经销商2"),
    ("P1", "/approve 1", t("chat.admin_only", "zh")),
    ("P1", "/training", ""),
    ("P1", "/checkin 123456", ""),
    ("P1", "/redeem MUG", t("rewards.in_private", "zh")),
    ("P1", "/lang zh", t("chat.lang_set", "zh")),
    ("GUEST", "/me", t("chat.need_bind", "zh")),
    ("P1", "/rank 99999", "99999"),
]


@pytest.mark.parametrize(("who", "text", "private"), PERSONAL)
def test_telegram_personal_answers_go_privately_and_the_group_gets_one_line(
        tg: httpx.Client, fake: FakeBotApi, who: str, text: str, private: str) -> None:
    group, mine = in_group(tg, fake, who, text)
    assert group == [SENT]
    assert mine and private in "\n".join(m["text"] for m in mine)


def test_telegram_broadcast_preview_and_its_buttons_go_to_the_admin_privately(tg: httpx.Client,
                                                                              fake: FakeBotApi) -> None:
    group, mine = in_group(tg, fake, "BOSS", "/broadcast 明天（周四）培训")
    assert group == [SENT]
    assert [m["reply_markup"]["inline_keyboard"][0][0]["callback_data"] for m in mine] == ["bc:confirm:1"]


def test_telegram_rank_in_a_group_posts_the_top_n_and_sends_one_s_own_line_privately(tg: httpx.Client,
                                                                                      fake: FakeBotApi) -> None:
    group, mine = in_group(tg, fake, "P4", "/rank")
    assert len(group) == 2 and group[1] == SENT
    board = group[0]
    assert "本月销售冠军" in board and "经销商1" in board and "经销商3" in board  # the public top 3
    assert "经销商4" not in board and "第 4 名" not in board and "您" not in board.split("\n", 1)[1]
    assert "不在本比赛" not in board
    own = "\n".join(m["text"] for m in mine)
    assert "第 4 名" in own and "距第 3 名还差" in own
    notice = fake.sent()[-1]  # it answers the asker's message (88 in the sample), so the group sees whom it is for
    assert notice["text"] == SENT and notice["reply_parameters"]["message_id"] == 88
    assert "reply_parameters" not in fake.sent()[-2]


def test_telegram_public_answers_stay_in_the_group_and_nothing_else_does(tg: httpx.Client,
                                                                         fake: FakeBotApi) -> None:
    for who, text, piece in (("P1", "/help", "排行"), ("P1", "/contests", "本月销售冠军"), ("P1", "/honors", ""),
                             ("BOSS", "/rank", "经销商1")):  # an admin's board has no line of their own
        group, mine = in_group(tg, fake, who, text)
        assert len(group) == 1 and piece in group[0] and mine == []
    group, _ = in_group(tg, fake, "P1", "/me")
    assert group == [SENT]


def test_telegram_team_group_sees_the_team_total_and_no_one_s_contribution(tg: httpx.Client, fake: FakeBotApi,
                                                                           engine: Engine) -> None:
    group, mine = in_group(tg, fake, "BOSS", "/linkgroup EAST")  # the group learns it is its team's now
    assert group == [t("chat.group_linked", "zh", team="EAST")] and mine == []
    group, mine = in_group(tg, fake, "CAP", "/team")
    assert len(group) == 2 and group[1] == SENT
    assert "EAST" in group[0] and "团队合计" in group[0]
    assert not any(name in group[0] for name in ("经销商1", "经销商2", "王队长", "成员"))
    assert "经销商2" in mine[0]["text"] and "团队合计" in mine[0]["text"]
    group, mine = in_group(tg, fake, "P1", "/team")  # a dealer's own share stays theirs
    assert "团队合计" in group[0] and "您的个人销售额" not in group[0] and "您的个人销售额" in mine[0]["text"]
    # the same question in another group, not linked to the team: nothing about the team there
    group, _ = in_group(tg, fake, "CAP", "/team", group=-1009999)
    assert group == [SENT]


def test_telegram_user_without_a_private_chat_is_told_how_to_open_one(tg: httpx.Client, fake: FakeBotApi) -> None:
    fake.fail_chat(TG["P1"], 403, "Forbidden: bot can't initiate conversation with a user")
    group, mine = in_group(tg, fake, "P1", "/me")
    assert group == [t("chat.open_private", "zh", bot="mianzi_bot")] and "t.me/mianzi_bot" in group[0]
    assert [m["text"] for m in mine if "积分余额" in m["text"]]  # tried there, refused by Telegram
    group, _ = in_group(tg, fake, "P4", "/rank")
    assert "经销商1" in group[0] and "第 4 名" not in "".join(group) and "t.me/mianzi_bot" not in group[-1]


# --- WeCom ----------------------------------------------------------------------------------------------


@pytest.fixture
def wecom(db_url: str, engine: Engine, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[httpx.Client, FakeWeixin,
                                                                                               Settings]]:
    loopback(monkeypatch)
    program(engine, "wecom")
    with serve_fake() as api:
        settings = wecom_settings(db_url, wecom_api_url=api.base_url)
        with http_client(Starlette(routes=wecom_routes(settings, engine))) as client:
            yield client, api, settings


_msg_ids = itertools.count(7_000_000_000_000_000_001)


def in_wecom_group(wecom: tuple[httpx.Client, FakeWeixin, Settings], engine: Engine, who: str, text: str,
                   chat: str = WECOM_GROUP) -> tuple[list[str], list[str]]:
    """`who` writes `text` in a WeCom group chat; returns (texts sent to the group, texts sent to them)."""
    client, api, settings = wecom
    xml = sample_xml("wecom_text_plain", FromUserName=WC[who], Content=text, MsgId=str(next(_msg_ids)),
                     ChatId=chat, ChatType="group")
    body, query = encrypted(xml)
    before = len(api.calls)
    response = client.post("/wecom/callback", params=query, content=body)
    assert response.status_code == 200 and response.text == ""  # no passive reply: it would go to the asker's app chat

    drain(DeliveryWorker(engine, push_senders(settings, engine), ceilings(settings), backoff=0.05))
    new = api.calls[before:]
    group = [c.body["text"]["content"] for c in new if c.path == "appchat/send" and c.body["chatid"] == chat]
    mine = [c.body["text"]["content"] for c in new if c.path == "message/send" and c.users == [WC[who]]]
    assert len(group) == len([c for c in new if c.path == "appchat/send"]), new
    return group, mine


@pytest.mark.parametrize(("who", "text", "private"), [
    ("P1", "我的", "积分余额"),
    ("P1", "积分商城", "您的积分"),
    ("CAP", "团队", "经销商2"),
    ("BOSS", "积分商城", "经销商2（P2）"),
    ("BOSS", "调整积分 P1 +50 补发", "经销商1"),
    ("BOSS", "群发 明天培训", "明天培训"),
    ("P1", "培训", ""),
    ("GUEST", "我的", t("chat.need_bind", "zh")),
])
def test_wecom_personal_answers_go_by_message_send_and_the_group_gets_one_line(
        wecom: tuple[httpx.Client, FakeWeixin, Settings], engine: Engine, who: str, text: str, private: str) -> None:
    group, mine = in_wecom_group(wecom, engine, who, text)
    assert group == [SENT]
    assert len(mine) == 1 and private in mine[0]


def test_wecom_rank_in_a_group_chat_posts_the_top_n_and_sends_one_s_own_line_privately(
        wecom: tuple[httpx.Client, FakeWeixin, Settings], engine: Engine) -> None:
    group, mine = in_wecom_group(wecom, engine, "P4", "排行")
    assert len(group) == 1 and group[0].endswith(SENT)
    assert "经销商1" in group[0] and "经销商3" in group[0] and "第 4 名" not in group[0]
    assert len(mine) == 1 and "第 4 名" in mine[0]


def test_wecom_team_group_sees_the_team_total_only(wecom: tuple[httpx.Client, FakeWeixin, Settings],
                                                  engine: Engine) -> None:
    link(engine, "wecom", WECOM_GROUP)
    group, mine = in_wecom_group(wecom, engine, "CAP", "团队")
    assert len(group) == 1 and "团队合计" in group[0] and group[0].endswith(SENT)
    assert "经销商2" not in group[0] and "经销商2" in mine[0]
    group, mine = in_wecom_group(wecom, engine, "P1", "比赛")  # contest rules are public: the group, nothing private
    assert len(group) == 1 and "本月销售冠军" in group[0] and mine == []


# --- admins get admin news only ----------------------------------------------------------------------


def test_admins_are_not_cheered_on_like_dealers(engine: Engine) -> None:
    """An admin never takes part: no "看看您现在的名次" when they bind, no "一起加油！" under a team's
    gap, no "your first sale" on an empty board; and no participant's push on schedule."""
    from bot.channels.console import converse
    from handlers.nudges import queue_final_hours, queue_weekly
    from handlers.types import ChatConfig
    from models.identities import new_invite
    from models.tables import Outbox

    config = ChatConfig(max_text=1000)
    build_program(engine)
    now = utcnow()
    with session_scope(engine) as s:
        b.partners(s, {"code": "BOSS", "name": "孙经理", "role": "admin"})
        today = now.astimezone(b.SH).date()
        b.contest(s, name="团队赛", scope="team", start=str(today - timedelta(days=10)), end=str(today + timedelta(days=1)))
        b.contest(s, name="新品赛", metric="units", segment="region=西北", start=str(today - timedelta(days=1)),
                  end=str(today + timedelta(days=1)))
        boss = s.execute(select(Partner).where(Partner.code == "BOSS")).scalar_one()
        invite = new_invite(s, boss, now=now).code
    bound = converse(engine, "u-boss", f"绑定 {invite}", config, now)
    assert "绑定成功" in bound and "看看您现在的名次" not in bound and "帮助" in bound
    team = converse(engine, "u-boss", "团队 WEST", config, now)  # WEST trails EAST in the team contest
    assert "距上一名还差" in team and "一起加油" not in team
    board = converse(engine, "u-boss", "排行 新品赛", config, now)
    assert "暂时还没有成绩" in board and "第一单" not in board
    assert "您的名次" not in converse(engine, "u-boss", "帮助", config, now)
    with session_scope(engine) as s:
        queue_weekly(s, now)
        queue_final_hours(s, now)
        boss_id = s.execute(select(Partner.id).where(Partner.code == "BOSS")).scalar_one()
        assert s.execute(select(Outbox.key).where(Outbox.partner_id == boss_id)).scalars().all() == []
