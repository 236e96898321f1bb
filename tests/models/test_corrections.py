"""Correcting contests through the real command line and chat: edit (what may change when), cancel,
the minimum number of ratings of an average, the featured board of `排行`."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, select
from sqlmodel import Session

from bot.channels.console import converse
from handlers.types import ChatConfig
from models.db import session_scope
from models.identities import new_invite
from models.tables import Contest, ContestChange, Outbox, Partner, Sale
from tests.support import builders as b
from tests.support.cli_runner import mianzi

CONFIG = ChatConfig(max_text=1000)
RUNNING = ["--start", "2026-01-01", "--end", "2099-12-31"]
UPCOMING = ["--start", "2099-01-01", "--end", "2099-01-31"]
OVER = ["--start", "2026-10-01", "--end", "2026-10-31"]


def now() -> datetime:
    return datetime.now(UTC)


def create(*args: str) -> int:
    ran = mianzi("contests", "create", "--metric", "revenue", *args, "--json")
    assert ran.code == 0, ran.err
    return int(ran.json()["id"])


def bind(engine: Engine, code: str) -> str:
    user = f"u-{code}"
    with session_scope(engine) as s:
        partner = s.execute(select(Partner).where(Partner.code == code)).scalar_one()
        invite = new_invite(s, partner, now=now()).code
    assert "绑定成功" in converse(engine, user, f"绑定 {invite}", CONFIG, now())
    return user


@pytest.fixture
def program(engine: Engine, workdir: Path) -> Engine:
    """Two dealers and an admin; the commands run in a scratch directory (close-due writes images)."""
    with session_scope(engine) as s:
        b.partners(s, {"code": "P1", "name": "张三", "team": "EAST"}, {"code": "P2", "name": "李四", "team": "EAST"},
                   {"code": "BOSS", "name": "孙经理", "role": "admin"})
    return engine


def outbox_keys(engine: Engine, prefix: str) -> list[str]:
    with Session(engine) as s:
        return sorted(s.execute(select(Outbox.key).where(Outbox.key.startswith(prefix))).scalars())


def test_edit_before_start_changes_anything_and_is_logged(program: Engine) -> None:
    cid = create("--name", "1月冠军", *UPCOMING)
    ran = mianzi("contests", "edit", str(cid), "--metric", "units", "--start", "2099-02-01", "--end", "2099-02-28",
                 "--tiers", "铜牌=10:50", "--segment", "region=华东", "--min-ratings", "5")
    assert ran.code == 0, ran.err
    assert "已修改比赛" in ran.out and "指标" in ran.out and "阶梯奖励" in ran.out
    shown = mianzi("contests", "show", str(cid), "--json").json()
    assert (shown["metric"], shown["segment"], shown["min_ratings"]) == ("units", {"region": "华东"}, 5)
    assert shown["start"] == "2099-01-31T16:00:00+00:00" and shown["tiers"][0]["threshold"] == "10.00"
    [change] = shown["changes"]
    assert change["action"] == "edit" and change["by"] == "cli"
    assert change["changes"]["metric"] == ["revenue", "units"]
    assert change["changes"]["start_at"] == ["2098-12-31T16:00:00+00:00", "2099-01-31T16:00:00+00:00"]
    same = mianzi("contests", "edit", str(cid), "--metric", "units")
    assert same.code == 2 and "没有需要修改的内容" in same.err


@pytest.mark.parametrize(("flag", "value", "field"), [
    ("--metric", "units", "指标"), ("--end", "2099-06-30", "结束时间"), ("--tiers", "金牌=1:5", "阶梯奖励"),
    ("--segment", "region=华北", "参赛范围"), ("--min-ratings", "9", "最少评价数"), ("--min-score", "100", "最低成绩"),
])
def test_running_contest_refuses_rule_changes(program: Engine, flag: str, value: str, field: str) -> None:
    cid = create("--name", "冠军赛", *RUNNING)
    ran = mianzi("contests", "edit", str(cid), "--name", "新名字", flag, value)
    assert ran.code == 2 and len(ran.err.strip().splitlines()) == 1
    assert f"已开始，不能再修改“{field}”" in ran.err and "参赛者正按已公布的规则比赛" in ran.err
    with Session(program) as s:
        contest = s.get(Contest, cid)
        assert contest is not None and contest.name == "冠军赛"  # nothing changed, the name neither
        assert s.execute(select(ContestChange)).first() is None


def test_running_contest_takes_name_grace_prizes_top_and_tells_participants(program: Engine) -> None:
    user = bind(program, "P1")
    cid = create("--name", "冠军赛", *RUNNING)
    ran = mianzi("contests", "edit", str(cid), "--name", "年度冠军赛", "--grace", "6h", "--prizes", "1=800",
                 "--top", "5", "--json")
    assert ran.code == 0, ran.err
    assert sorted(ran.json()["changed"]) == ["grace_seconds", "name", "prizes", "top_n"]
    assert ran.json()["queued"] == 1  # P1 is bound; P2 has no chat account
    [key] = outbox_keys(program, "contest_change:")
    with Session(program) as s:
        row = s.execute(select(Outbox).where(Outbox.key == key)).scalar_one()
        record = s.execute(select(ContestChange)).scalar_one()
    assert key == f"contest_change:{record.id}:partner:{row.partner_id}" and record.announced == 1
    assert "比赛规则有更新" in row.payload["text"] and "年度冠军赛" in row.payload["text"]
    assert "第 1 名 800 积分" in row.payload["text"] and "前 5 名" in row.payload["text"]
    assert "年度冠军赛" in converse(program, user, "比赛", CONFIG, now())
    featured = mianzi("contests", "edit", str(cid), "--featured", "--json")  # not a rule: nobody is told
    assert featured.code == 0 and featured.json() == {"id": cid, "changed": ["featured"], "queued": 0}
    assert len(outbox_keys(program, "contest_change:")) == 1


def test_closed_contest_changes_nothing(program: Engine) -> None:
    cid = create("--name", "10月冠军", *OVER)
    assert mianzi("contests", "close-due").code == 0
    ran = mianzi("contests", "edit", str(cid), "--name", "改名")
    assert ran.code == 2 and "已结算" in ran.err and "不能再修改" in ran.err
    cancel = mianzi("contests", "cancel", str(cid))
    assert cancel.code == 2 and "不能取消" in cancel.err
    assert mianzi("contests", "show", str(cid), "--json").json()["status"] == "closed"


def test_cancel_hides_never_closes_never_pays(program: Engine) -> None:
    user = bind(program, "P1")
    keep = create("--name", "正式赛", *RUNNING)
    wrong = create("--name", "建错的比赛", *RUNNING, "--prizes", "1=999")
    assert "建错的比赛" in converse(program, user, "比赛", CONFIG, now())
    ran = mianzi("contests", "cancel", str(wrong), "--announce")
    assert ran.code == 0 and "已取消比赛" in ran.out and "已通知 1 位参赛者" in ran.out
    again = mianzi("contests", "cancel", str(wrong), "--announce")
    assert again.code == 2 and "已取消" in again.err
    assert len(outbox_keys(program, "contest_cancel:")) == 1  # queued once
    listed = {c["id"]: c for c in mianzi("contests", "list", "--json").json()}
    assert listed[wrong]["status"] == "cancelled" and listed[wrong]["cancelled_by"] == "cli"
    assert "已取消" in mianzi("contests", "list").out
    shown = mianzi("contests", "show", str(wrong), "--json").json()
    assert shown["status"] == "cancelled" and shown["changes"][0]["action"] == "cancel"
    chat = converse(program, user, "比赛", CONFIG, now())
    assert "正式赛" in chat and "建错的比赛" not in chat
    rank = converse(program, user, "排行", CONFIG, now())
    assert "正式赛" in rank and "建错的比赛" not in rank
    assert "建错的比赛" not in converse(program, user, f"排行 {wrong}", CONFIG, now())
    assert "建错的比赛" not in converse(program, user, "排行 建错", CONFIG, now())
    edit = mianzi("contests", "edit", str(wrong), "--name", "x")
    assert edit.code == 2 and "已取消，不能再修改" in edit.err
    # past its end, close-due leaves it alone: no results, no points
    with session_scope(program) as s:
        contest = s.get(Contest, wrong)
        assert contest is not None
        contest.end_at = datetime(2026, 11, 1, tzinfo=UTC)
    assert "没有需要结算的比赛" in mianzi("contests", "close-due").out
    with Session(program) as s:
        contest = s.get(Contest, wrong)
        assert contest is not None and contest.closed_at is None and contest.cancelled_at is not None
    assert keep != wrong


def test_cancel_unknown_contest(program: Engine) -> None:
    ran = mianzi("contests", "cancel", "999")
    assert ran.code == 2 and "没有编号为 999 的比赛" in ran.err


def rated(engine: Engine) -> None:
    """P1: one 5-star rating; P2: ten ratings averaging 4.9; P3: two ratings of 5."""
    rows = [{"id": "a1", "partner": "P1", "satisfaction": "5"}]
    rows += [{"id": f"b{i}", "partner": "P2", "satisfaction": "5" if i else "4"} for i in range(10)]
    rows += [{"id": f"c{i}", "partner": "P3", "satisfaction": "5"} for i in range(2)]
    with session_scope(engine) as s:
        b.partners(s, {"code": "P3", "name": "王五", "team": "WEST"})
        b.sales(s, *({"occurred_at": "2026-12-01T10:00", "amount": "100", **r} for r in rows))


def test_an_average_needs_enough_ratings(program: Engine) -> None:
    rated(program)
    user = bind(program, "P1")
    cid = create("--name", "满意度之星", *RUNNING, "--prizes", "1=300")
    ran = mianzi("contests", "edit", str(cid), "--metric", "satisfaction")  # running: refused
    assert ran.code == 2
    cid = int(mianzi("contests", "create", "--name", "满意度之星", "--metric", "satisfaction", *RUNNING,
                     "--prizes", "1=300", "--json").json()["id"])
    shown = {line["partner"]: line for line in mianzi("contests", "show", str(cid), "--json").json()["standings"]}
    assert shown["P2"]["rank"] == 1 and shown["P2"]["prize_points"] == 300 and shown["P2"]["score"] == "4.90"
    for code, count in (("P1", 1), ("P3", 2)):
        assert shown[code]["eligible"] is False and shown[code]["rank"] is None and shown[code]["prize_points"] == 0
        assert shown[code]["reason_code"] == "not_eligible.few_ratings"
        assert shown[code]["reason"] == f"客户评价还不够 3 条（本期 {count} 条），暂未获得排名资格"
    rank = converse(program, user, f"排行 {cid}", CONFIG, now())
    assert "客户评价还不够 3 条（本期 1 条），暂未获得排名资格" in rank and "李四" in rank
    assert "本期至少 3 条客户评价" in converse(program, user, "比赛", CONFIG, now())  # the rule is shown
    converse(program, user, "/lang en", CONFIG, now())
    assert "not yet eligible: customer ratings this period 1, of the 3 needed" in converse(
        program, user, f"/rank {cid}", CONFIG, now())
    lenient = int(mianzi("contests", "create", "--name", "满意度（宽松）", "--metric", "satisfaction", *RUNNING,
                         "--min-ratings", "1", "--json").json()["id"])
    board = mianzi("contests", "show", str(lenient), "--json").json()["standings"]
    assert [line["partner"] for line in board if line["rank"]][:2] in (["P1", "P3"], ["P3", "P1"])
    bad = mianzi("contests", "create", "--name", "x", "--metric", "satisfaction", *RUNNING, "--min-ratings", "0")
    assert bad.code == 2 and "--min-ratings 必须是 1 到 10000 之间的整数" in bad.err


def test_rank_shows_the_featured_contest_first(program: Engine) -> None:
    user = bind(program, "P1")
    main = create("--name", "12月主赛", "--start", "2026-12-01", "--end", "2099-12-31")
    side = create("--name", "周冠军", "--start", "2026-11-30", "--end", "2099-06-30")  # ends first
    first = converse(program, user, "排行", CONFIG, now())
    assert first.startswith("🏆 周冠军")  # without a mark: the soonest end
    assert mianzi("contests", "edit", str(main), "--featured").code == 0
    rank = converse(program, user, "排行", CONFIG, now())
    assert rank.startswith("🏆 12月主赛") and f"“排行 {side}” 周冠军" in rank
    assert converse(program, user, "/rank", CONFIG, now()).startswith("🏆 12月主赛")
    assert converse(program, user, "排行 周冠军", CONFIG, now()).startswith("🏆 周冠军")
    assert converse(program, user, "比赛", CONFIG, now()).index("12月主赛") < \
        converse(program, user, "比赛", CONFIG, now()).index("周冠军")
    created = create("--name", "季度赛", "--start", "2026-12-01", "--end", "2099-03-31", "--featured")
    listed = {c["id"]: c["featured"] for c in mianzi("contests", "list", "--json").json()}
    assert listed == {main: True, side: False, created: True}
    assert converse(program, user, "排行", CONFIG, now()).startswith("🏆 季度赛")  # two featured: soonest end
    assert mianzi("contests", "edit", str(created), "--not-featured").code == 0
    assert converse(program, user, "排行", CONFIG, now()).startswith("🏆 12月主赛")


def test_results_sheet_for_finance(program: Engine, workdir: Path) -> None:
    from decimal import Decimal

    from openpyxl import load_workbook

    with session_scope(program) as s:
        b.partners(s, {"code": "P3", "name": "王五", "team": "WEST"})
        b.sales(s, {"id": "s1", "partner": "P1", "occurred_at": "2026-10-10T10:00", "amount": "1234.57"},
                {"id": "s2", "partner": "P2", "occurred_at": "2026-10-11T10:00", "amount": "333.30"},
                {"id": "s3", "partner": "P3", "occurred_at": "2026-10-12T10:00", "amount": "50.01"})
    cid = create("--name", "10月冠军", *OVER, "--prizes", "1=500,2=300", "--tiers", "银牌=100:10:1.5%,金牌=1000:50:2.25%")
    early = mianzi("contests", "results", str(cid))
    assert early.code == 2 and "还没有结算" in early.err
    assert mianzi("contests", "close-due").code == 0
    with session_scope(program) as s:  # a late sale: stored, but the frozen revenue (and rebate) stay
        b.sales(s, {"id": "late", "partner": "P2", "occurred_at": "2026-10-20T10:00", "amount": "9999"})
    doc = mianzi("contests", "results", str(cid), "--json").json()
    lines = {x["code"]: x for x in doc["lines"]}
    # 123457 fen × 2.25% = 2777.7825 → 2778; 33330 × 1.5% = 499.95 → 500 (half up); no tier → 0
    assert (lines["P1"]["rank"], lines["P1"]["tier"], lines["P1"]["prize_points"]) == (1, "金牌", 550)
    assert (lines["P1"]["revenue"], lines["P1"]["rebate_pct"], lines["P1"]["rebate"]) == ("1234.57", "2.25", "27.78")
    assert (lines["P2"]["rank"], lines["P2"]["prize_points"], lines["P2"]["rebate"]) == (2, 310, "5.00")
    assert (lines["P3"]["rank"], lines["P3"]["tier"], lines["P3"]["rebate"]) == (3, None, "0.00")
    assert lines["P1"]["team"] == "EAST" and lines["P1"]["name"] == "张三"
    assert doc["totals"] == {"participants": 3, "prize_points": 860, "revenue": "1617.88", "rebate": "32.78"}
    xlsx = workdir / "results.xlsx"
    ran = mianzi("contests", "results", str(cid), "--out", str(xlsx))
    assert ran.code == 0 and "返利合计 ¥32.78" in ran.out
    sheet = load_workbook(xlsx).active
    rows = [list(r) for r in sheet.iter_rows(values_only=True)]
    head = rows[0]
    assert head[:3] == ["编号", "名称", "团队"] and "返利（元）" in head
    rebate, revenue = head.index("返利（元）"), head.index("本期销售额（元）")
    fen = [int(Decimal(str(r[rebate])) * 100) for r in rows[1:-1]]
    assert sorted(fen) == [0, 500, 2778] and rows[-1][0] == "合计"
    assert int(Decimal(str(rows[-1][rebate])) * 100) == sum(fen) == 3278
    assert sum(int(Decimal(str(r[revenue])) * 100) for r in rows[1:-1]) == 161788
    csv_path = workdir / "results.csv"
    assert mianzi("contests", "results", str(cid), "--out", str(csv_path)).code == 0
    import csv

    with csv_path.open(encoding="utf-8-sig") as f:
        table = list(csv.reader(f))
    assert sum(Decimal(r[rebate]) for r in table[1:-1]) == Decimal(table[-1][rebate]) == Decimal("32.78")
    printed = mianzi("contests", "results", str(cid))
    assert printed.code == 0 and "四舍五入到分" in printed.out and "27.78" in printed.out
    bad = mianzi("contests", "results", str(cid), "--out", "x.pdf")
    assert bad.code == 2 and ".xlsx 或 .csv" in bad.err


def test_recurring_targets_and_admins_told_who_lacks_one(program: Engine, workdir: Path) -> None:
    with session_scope(program) as s:
        b.partners(s, {"code": "P3", "name": "王五", "team": "WEST"})
        b.sales(s, {"id": "d2", "partner": "P2", "occurred_at": "2026-12-01T10:00", "amount": "500"})
    boss = bind(program, "BOSS")
    targets = workdir / "targets.csv"
    targets.write_text("partner,period_start,period_end,target\nP1,2026-11-01,2026-11-30,1000\n"
                       "P2,每月,,2000\n", encoding="utf-8")
    ran = mianzi("targets", "import", str(targets))
    assert ran.code == 0 and "新增 2" in ran.out, ran.err
    cid = create("--name", "11月达成率", "--start", "2026-11-01", "--end", "2026-11-30", "--recur", "monthly")
    assert mianzi("contests", "edit", str(cid), "--metric", "attainment").code == 2  # it has started
    with session_scope(program) as s:  # (created as attainment from the start, the way it is meant)
        contest = s.get(Contest, cid)
        assert contest is not None
        contest.metric = "attainment"
    closed = mianzi("contests", "close-due")
    assert closed.code == 0, closed.err
    assert "有 2 位参赛者没有本期目标：P1, P3（已通知管理员）" in closed.out
    with Session(program) as s:
        nxt = s.execute(select(Contest).where(Contest.previous_id == cid)).scalar_one()
        [row] = s.execute(select(Outbox).where(Outbox.key.startswith("targets_missing:"))).scalars()
        boss_id = s.execute(select(Partner.id).where(Partner.code == "BOSS")).scalar_one()
    assert row.key == f"targets_missing:{nxt.id}:partner:{boss_id}" and row.partner_id == boss_id
    assert "2 位参赛者还没有本期目标：P1、P3" in row.payload["text"]
    shown = {x["partner"]: x for x in mianzi("contests", "show", str(nxt.id), "--json").json()["standings"]}
    assert shown["P2"]["eligible"] and shown["P2"]["score"] == "25.00"  # ¥500 of the monthly ¥2,000
    assert shown["P1"]["reason_code"] == "not_eligible.no_target"
    dated = workdir / "dated.csv"  # a dated target of the month wins over the monthly amount
    dated.write_text("partner,period_start,period_end,target\nP2,2026-12-01,2026-12-31,1000\n"
                     "P2,monthly,,4000\n", encoding="utf-8")
    again = mianzi("targets", "import", str(dated))
    assert again.code == 0 and "新增 1，更新 1" in again.out
    shown = {x["partner"]: x for x in mianzi("contests", "show", str(nxt.id), "--json").json()["standings"]}
    assert shown["P2"]["score"] == "50.00"
    assert boss


def test_a_reversal_moves_a_partner_down_an_open_board_and_is_late_on_a_closed_one(program: Engine) -> None:
    with session_scope(program) as s:
        b.sales(s, {"id": "o1", "partner": "P1", "occurred_at": "2026-10-10T10:00", "amount": "800"},
                {"id": "d1", "partner": "P1", "occurred_at": "2026-12-01T10:00", "amount": "3000", "units": 3,
                 "customer": "C1", "satisfaction": "5"},
                {"id": "d2", "partner": "P2", "occurred_at": "2026-12-01T11:00", "amount": "2000", "units": 1})
    user = bind(program, "P1")
    closed = create("--name", "10月冠军", *OVER, "--tiers", "银牌=100:10:2%")
    assert mianzi("contests", "close-due").code == 0
    revenue = create("--name", "12月冠军", "--start", "2026-12-01", "--end", "2099-12-31", "--featured")
    orders = int(mianzi("contests", "create", "--name", "12月订单王", "--metric", "orders",
                        "--start", "2026-12-01", "--end", "2099-12-31", "--json").json()["id"])
    before = converse(program, user, "排行", CONFIG, now())
    assert "🙋 您：第 1 名" in before
    assert mianzi("sales", "void", "d1").code == 2  # a reason is required
    ran = mianzi("sales", "void", "d1", "--reason", "客户退货")
    assert ran.code == 0 and "已更正销售记录 d1" in ran.out and "冲销 ¥3,000.00" in ran.out, ran.err
    after = converse(program, user, "排行", CONFIG, now())  # at once: the board follows
    assert "🥇 李四" in after and "🙋 您：第 1 名" not in after
    shown = {x["partner"]: x for x in mianzi("contests", "show", str(revenue), "--json").json()["standings"]}
    assert (shown["P1"]["score"], shown["P2"]["rank"]) == ("0.00", 1)
    counted = {x["partner"]: x for x in mianzi("contests", "show", str(orders), "--json").json()["standings"]}
    assert counted["P1"]["score"] == "0.00" and counted["P2"]["score"] == "1.00"  # the order is taken back
    with Session(program) as s:
        original, reversal = s.execute(select(Sale).where(Sale.ext_id.in_(("d1", "void:d1")))
                                       .order_by(Sale.id)).scalars()
    assert (original.amount_fen, original.units, original.reverses) == (300000, 3, None)  # never edited
    assert (reversal.amount_fen, reversal.units, reversal.reverses) == (-300000, -3, original.id)
    assert (reversal.occurred_at, reversal.customer, reversal.reason) == (original.occurred_at, "C1", "客户退货")
    again = mianzi("sales", "void", "d1", "--reason", "再来一次")
    assert again.code == 2 and "已经被更正过（更正记录 void:d1）" in again.err
    assert "本身就是一条更正记录" in mianzi("sales", "void", "void:d1", "--reason", "x").err
    assert "没有编号为 nope 的销售记录" in mianzi("sales", "void", "nope", "--reason", "x").err
    # the closed October: stored, nothing frozen changes, listed with the late sales
    frozen = mianzi("contests", "results", str(closed), "--json").json()
    assert mianzi("sales", "void", "o1", "--reason", "录入错误").code == 0
    doc = mianzi("contests", "show", str(closed), "--json").json()
    assert (doc["late_sales"], doc["late_corrections"]) == (1, 1)
    assert {x["partner"]: x["score"] for x in doc["standings"]}["P1"] == "800.00"
    assert mianzi("contests", "results", str(closed), "--json").json() == frozen
    assert "结算后又到达 1 条销售记录（其中 1 条是更正）" in mianzi("contests", "show", str(closed)).out
