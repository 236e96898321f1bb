"""The rewards store through the chat (console channel): browse, redeem, approve, reject; the CLI; races."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from sqlalchemy import Engine, select
from sqlmodel import Session

from bot.channels.console import converse
from models import rewards
from models.db import session_scope
from models.errors import DataError
from models.imports.records import rows_from_records
from models.imports.report import ImportRejected
from models.tables import ChatIdentity, Redemption, RewardItem
from tests.support.cli_runner import mianzi
from tests.support.console import CONFIG, NOW, ask, bound
from tests.support.incentives import balance, catalog, count, earn, entries, outbox, program, stock


@pytest.fixture
def ids(engine: Engine) -> dict[str, int]:
    return program(engine)


def test_catalog_lists_what_the_partner_can_afford_first(engine: Engine, ids: dict[str, int]) -> None:
    earn(engine, ids["P1"], 300)
    me = bound(engine, "P1")
    reply = ask(engine, me, "积分商城")
    lines = reply.splitlines()
    assert lines[0] == "🎁 积分商城 · 您的积分：300"
    assert lines[1].startswith("✅ MUG 马克杯 —— 100 积分（剩 5 件）")
    assert lines[2] == "🔒 TV 电视 —— 5,000 积分（还差 4,700 积分）"
    assert lines[3] == "⛔ PEN 钢笔 —— 50 积分（已兑完）"  # cheap but sold out: after what one can afford
    assert "旧款" not in reply  # inactive items are not offered
    assert "待审核" not in reply  # dealers do not see the admins' queue
    assert ask(engine, me, "/lang en") and "✅ MUG Mug — 100 points (5 left)" in ask(engine, me, "/rewards")


def test_redeem_then_approve(engine: Engine, ids: dict[str, int]) -> None:
    earn(engine, ids["P1"], 300)
    me, boss = bound(engine, "P1"), bound(engine, "BOSS")
    reply = ask(engine, me, "兑换 mug")  # SKUs are matched without regard to case
    assert reply.startswith("✅ 已提交兑换申请 #1：马克杯（100 积分）") and "当前余额 200" in reply
    assert balance(engine, ids["P1"]) == 200 and stock(engine, "MUG") == 4
    assert entries(engine, ids["P1"])[-1] == ("spent", -100)
    admin_note = outbox(engine, "redemption:1:admin:")
    assert list(admin_note) == [f"redemption:1:admin:{ids['BOSS']}"]
    assert "New redemption #1: 经销商1 (P1) asks for Mug" in admin_note[f"redemption:1:admin:{ids['BOSS']}"]["text"]
    assert "#1 经销商1 (P1) Mug, 100 points" in ask(engine, boss, "/rewards")  # the admin's queue

    assert "仅限渠道经理" in ask(engine, me, "批准 1")  # a dealer cannot approve their own request
    assert ask(engine, boss, "/approve 1").startswith("Approved redemption #1: Mug for 经销商1")
    told = outbox(engine, "redemption:1:decided")
    assert told["redemption:1:decided"]["text"].startswith("🎉 您的兑换申请 #1 已通过：马克杯")
    assert "already decided (approved)" in ask(engine, boss, "/approve 1")
    assert "already decided" in ask(engine, boss, "/reject 1 太晚了")  # no refund after an approval
    assert balance(engine, ids["P1"]) == 200 and stock(engine, "MUG") == 4
    assert "-100  积分兑换" in ask(engine, me, "我的")


def test_redeem_then_reject_refunds_points_and_stock(engine: Engine, ids: dict[str, int]) -> None:
    earn(engine, ids["P1"], 150)
    me, boss = bound(engine, "P1"), bound(engine, "BOSS")
    assert "#1" in ask(engine, me, "/redeem MUG")
    assert balance(engine, ids["P1"]) == 50 and stock(engine, "MUG") == 4
    reply = ask(engine, boss, "驳回 1 本月库存盘点中")
    assert reply.startswith("Declined redemption #1: Mug for 经销商1; 100 points and the stock are back")
    assert balance(engine, ids["P1"]) == 150 and stock(engine, "MUG") == 5
    assert entries(engine, ids["P1"]) == [("earned", 150), ("spent", -100), ("refunded", 100)]
    text = outbox(engine, "redemption:1:decided")["redemption:1:decided"]["text"]
    assert "未通过，原因：本月库存盘点中" in text and "100 积分已退回，当前余额 150" in text
    assert "already decided (declined)" in ask(engine, boss, "驳回 1 again")  # refunded once only
    assert "already decided" in ask(engine, boss, "批准 1")
    assert balance(engine, ids["P1"]) == 150 and stock(engine, "MUG") == 5
    me_view = ask(engine, me, "我的")
    assert "+100  兑换退回" in me_view and "-100  积分兑换" in me_view
    with Session(engine) as s:
        r = s.get(Redemption, 1)
        assert r.status == "rejected" and r.note == "本月库存盘点中" and r.decided_by == ids["BOSS"]


def test_redeem_with_too_few_points_changes_nothing(engine: Engine, ids: dict[str, int]) -> None:
    earn(engine, ids["P1"], 99)
    me = bound(engine, "P1")
    assert ask(engine, me, "兑换 MUG") == "积分不足：需要 100 积分，您现有 99 积分，还差 1 积分。"
    assert ask(engine, me, "兑换 TV").startswith("积分不足：需要 5,000 积分")
    assert balance(engine, ids["P1"]) == 99 and stock(engine, "MUG") == 5 and stock(engine, "TV") == 1
    assert count(engine, Redemption) == 0 and outbox(engine) == {}
    assert entries(engine, ids["P1"]) == [("earned", 99)]


def test_redeem_out_of_stock_unknown_and_inactive(engine: Engine, ids: dict[str, int]) -> None:
    earn(engine, ids["P1"], 10_000)
    earn(engine, ids["P2"], 10_000)
    first, second = bound(engine, "P1"), bound(engine, "P2")
    assert ask(engine, first, "兑换 PEN") == "抱歉，商品 PEN 已经兑完了。"
    assert "#1" in ask(engine, first, "兑换TV")  # the last television, typed without a space
    assert ask(engine, second, "兑换 TV") == "抱歉，商品 TV 已经兑完了。"
    assert "没有编号为 NOPE 的商品" in ask(engine, second, "兑换 NOPE")
    assert ask(engine, second, "兑换 OLD") == "商品 OLD 已下架。"
    assert ask(engine, second, "兑换").startswith("用法：兑换 商品编号")
    assert stock(engine, "TV") == 0 and stock(engine, "PEN") == 0 and stock(engine, "OLD") == 9
    assert balance(engine, ids["P2"]) == 10_000 and count(engine, Redemption) == 1
    boss = bound(engine, "BOSS")
    assert "Usage: /reject" in ask(engine, boss, "/reject")
    assert "no redemption #99" in ask(engine, boss, "/approve 99")


def test_catalog_import_is_all_or_nothing(engine: Engine, ids: dict[str, int]) -> None:
    bad = [{"sku": "A 1", "name_zh": "甲", "points": "10", "stock": "1"},
           {"sku": "B", "name_zh": "", "points": "-5", "stock": "x"},
           {"sku": "C", "name_zh": "丙", "points": "10", "stock": "1", "active": "maybe"},
           {"sku": "mug", "name_zh": "杯", "points": "10", "stock": "1"},
           {"sku": "MUG", "name_zh": "杯", "points": "10", "stock": "1"}]
    with session_scope(engine) as s, pytest.raises(ImportRejected) as rejected:
        rewards.import_catalog(s, rows_from_records(bad, rewards.CATALOG_COLUMNS), NOW)
    keys = [(e.line, e.key) for e in rejected.value.errors]
    assert (1, "row.bad_code") in keys and (2, "row.missing_value") in keys and (2, "row.out_of_range") in keys
    assert (2, "row.not_an_integer") in keys and (3, "rewards.row_bad_active") in keys
    assert (5, "row.duplicate_in_file") in keys
    assert count(engine, RewardItem) == 4  # nothing of the bad file
    with session_scope(engine) as s:
        catalog(s, {"sku": "MUG", "name_zh": "马克杯", "name_en": "Mug", "points": 120, "stock": 7},
                {"sku": "CAP", "name_zh": "帽子", "points": 80, "stock": 3})
    with Session(engine) as s:
        mug = rewards.item_by_sku(s, "mug")
        cap = rewards.item_by_sku(s, "CAP")
        assert (mug.points, mug.stock) == (120, 7) and cap.name_en == "帽子" and cap.active


def test_cli_catalog_redemptions_and_points(db_url: str, engine: Engine, ids: dict[str, int],
                                            workdir: Path) -> None:
    (workdir / "catalog.csv").write_text("\ufeffsku,name_zh,name_en,points,stock,active\n"
                                         "BAG,背包,Backpack,200,2,1\nMUG,马克杯,Mug,100,5,yes\n", encoding="utf-8")
    ran = mianzi("rewards", "import", "catalog.csv")
    assert ran.code == 0 and "新增 1" in ran.out and "未变 1" in ran.out
    (workdir / "bad.csv").write_text("sku,name_zh,points,stock\nX,叉,ten,1\n", encoding="utf-8")
    ran = mianzi("rewards", "import", "bad.csv")
    assert ran.code == 2 and "第 2 行" in ran.err and "points 不是整数" in ran.err
    listed = {d["sku"]: d for d in mianzi("rewards", "list", "--json").json()}
    assert listed["BAG"] == {"sku": "BAG", "name_zh": "背包", "name_en": "Backpack", "points": 200, "stock": 2,
                             "active": True, "pending": 0}

    assert mianzi("points", "adjust", "P1", "+500", "--reason", "开业奖励").code == 0
    ran = mianzi("points", "adjust", "P1", "-600", "--reason", "扣多了")  # never below zero
    assert ran.code == 2 and "现有 500 积分，不够扣减 600 积分" in ran.err
    assert mianzi("points", "adjust", "P1", "-50", "--reason", "更正").out.strip().endswith("当前余额 450。")
    assert mianzi("points", "adjust", "P1", "+10").code == 2  # a reason is required
    assert mianzi("points", "adjust", "NOBODY", "+10", "--reason", "x").code == 2
    shown = mianzi("points", "show", "P1", "--json").json()
    assert shown["balance"] == 450 and [e["amount"] for e in shown["entries"]] == [-50, 500]
    assert shown["entries"][0]["reason"] == {"code": "points.adjusted", "note": "更正", "by": None}
    assert "积分调整 更正" in mianzi("points", "show", "P1").out

    me = bound(engine, "P1")
    ask(engine, me, "兑换 BAG")
    ask(engine, me, "兑换 BAG")
    pending = mianzi("redemptions", "list", "--status", "pending", "--json").json()
    assert [(r["id"], r["partner"], r["sku"], r["points"]) for r in pending] == [(1, "P1", "BAG", 200),
                                                                               (2, "P1", "BAG", 200)]
    assert mianzi("redemptions", "approve", "1").code == 0
    ran = mianzi("redemptions", "reject", "2", "--reason", "每人限兑一个", "--json")
    assert ran.code == 0 and ran.json()["status"] == "rejected" and ran.json()["note"] == "每人限兑一个"
    assert mianzi("redemptions", "approve", "2").code == 2  # already decided
    assert mianzi("redemptions", "list", "--status", "bogus").code == 2
    assert [r["status"] for r in mianzi("redemptions", "list", "--json").json()] == ["approved", "rejected"]
    assert balance(engine, ids["P1"]) == 250 and stock(engine, "BAG") == 1
    assert set(outbox(engine, "redemption:")) >= {"redemption:1:decided", "redemption:2:decided"}
    assert "每人限兑一个" in outbox(engine, "redemption:2:decided")["redemption:2:decided"]["text"]


def _race(engine: Engine, users: list[str], sku: str) -> list[str]:
    """Every user asks for `sku` at the same moment, each from their own thread."""
    start = threading.Barrier(len(users))
    replies: dict[str, str] = {}
    errors: list[BaseException] = []

    def go(user: str) -> None:
        try:
            start.wait()
            replies[user] = converse(engine, user, f"兑换 {sku}", CONFIG, NOW)
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=go, args=(u,)) for u in users]
    for th in threads:
        th.start()
    for th in threads:
        th.join(120)
    assert not errors, errors
    return list(replies.values())


def _accounts(engine: Engine, partner_id: int, n: int, prefix: str) -> list[str]:
    """n chat accounts of one partner (one person, several phones: the worst case for a double spend)."""
    with session_scope(engine) as s:
        for i in range(n):
            s.add(ChatIdentity(partner_id=partner_id, platform="console", user_ref=f"{prefix}{i}",
                               chat_ref=f"{prefix}{i}", bound_at=NOW))
    return [f"{prefix}{i}" for i in range(n)]


def test_parallel_redemptions_never_overspend(engine: Engine, ids: dict[str, int]) -> None:
    earn(engine, ids["P1"], 1000)  # enough for 10 mugs; the stock is raised so points are the limit
    with session_scope(engine) as s:
        catalog(s, {"sku": "MUG", "name_zh": "马克杯", "points": 100, "stock": 50})
    replies = _race(engine, _accounts(engine, ids["P1"], 16, "phone"), "MUG")
    assert sum(r.startswith("✅ 已提交兑换申请") for r in replies) == 10
    assert sum(r.startswith("积分不足") for r in replies) == 6
    assert balance(engine, ids["P1"]) == 0 and stock(engine, "MUG") == 40


def test_parallel_redemptions_never_oversell(engine: Engine, ids: dict[str, int]) -> None:
    users = []
    for code in ("P1", "P2", "P3"):
        earn(engine, ids[code], 100_000)
        users += _accounts(engine, ids[code], 5, f"{code}-")
    with session_scope(engine) as s:
        catalog(s, {"sku": "BIKE", "name_zh": "自行车", "points": 1000, "stock": 4})
    replies = _race(engine, users, "BIKE")
    assert sum(r.startswith("✅ 已提交兑换申请") for r in replies) == 4
    assert sum(r == "抱歉，商品 BIKE 已经兑完了。" for r in replies) == 11
    assert stock(engine, "BIKE") == 0
    with Session(engine) as s:
        spent = sum(r.points for r in s.execute(select(Redemption)).scalars())
    assert spent == 4000
    assert sum(balance(engine, ids[c]) for c in ("P1", "P2", "P3")) == 300_000 - 4000


def test_stock_never_below_zero_even_against_a_bug(engine: Engine, ids: dict[str, int]) -> None:
    from sqlalchemy import update
    from sqlalchemy.exc import IntegrityError

    with pytest.raises(IntegrityError), session_scope(engine) as s:
        s.execute(update(RewardItem).where(RewardItem.sku == "PEN").values(stock=RewardItem.stock - 1))
    with pytest.raises(DataError), session_scope(engine) as s:
        rewards.redeem(s, ids["P1"], "PEN", NOW)
    assert stock(engine, "PEN") == 0
