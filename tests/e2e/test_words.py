"""Words that come out wrong (issue 12): the user's own text kept as typed, check-in codes, import
summaries, replies about a partner to an admin, times and zones, money and points, captains' numbers."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine

from models import trainings
from models.db import session_scope
from models.tables import TrainingSignup
from tests.support.cli_runner import mianzi
from tests.support.console import NOW, ask, bound
from tests.support.incentives import balance, count, earn, outbox, program

TEXT = "明天（周四）上午10点培训，请准时参加！"


@pytest.fixture
def ids(engine: Engine) -> dict[str, int]:
    return program(engine)


def test_broadcast_adjust_and_reject_keep_the_text_as_typed(engine: Engine, ids: dict[str, int]) -> None:
    boss, _, p2 = bound(engine, "BOSS"), bound(engine, "P1"), bound(engine, "P2")
    ask(engine, boss, "/lang zh")
    preview = ask(engine, boss, f"/broadcast {TEXT}")
    assert f"\n{TEXT}\n" in preview
    assert ask(engine, boss, "确认").startswith("✅ 群发 #1 已排队")
    sent = [p["text"] for k, p in outbox(engine, "broadcast:1:").items()]
    assert sent and all(text.startswith(f"📢 {TEXT}") for text in sent)
    assert f"\n{TEXT}\n" in ask(engine, boss, f"群发 region=华东 {TEXT}")  # segment words still understood
    assert f"范围：region=华东）：\n\n{TEXT}\n" in ask(engine, boss, f"群发 region＝华东 {TEXT}")  # typed full-width

    reply = ask(engine, boss, "调整积分 Ｐ１ ＋２０ 补发（11月培训）！")  # full-width code and amount still work
    assert "（补发（11月培训）！）" in reply and balance(engine, ids["P1"]) == 20
    assert "补发（11月培训）！" in next(iter(outbox(engine, "points:adjusted:").values()))["text"]

    earn(engine, ids["P2"], 500)
    assert "已提交兑换申请 #1" in ask(engine, p2, "兑换 MUG")
    assert "已驳回兑换申请 #1" in ask(engine, boss, "驳回 １ 地址不全，请补充！")
    assert "原因：地址不全，请补充！。" in outbox(engine, "redemption:1:decided")["redemption:1:decided"]["text"]


def training(engine: Engine, title: str, start, code: str, points: int = 0) -> int:  # type: ignore[no-untyped-def]
    with session_scope(engine) as s:
        return trainings.create(s, trainings.TrainingSpec(title, start, 90 * 60, "上海 会议室A", None, points, code),
                                NOW).id  # type: ignore[return-value]


def test_check_in_finds_the_training_whose_code_was_given(engine: Engine, ids: dict[str, int]) -> None:
    today = training(engine, "今天的培训", NOW, "TODAY1")
    later = training(engine, "下周的培训", NOW + timedelta(days=7), "NEXT01")
    me = bound(engine, "P1")
    at = NOW + timedelta(minutes=5)
    # the right code of next week's session: too early for it, no wrong try, no walk-in anywhere
    assert ask(engine, me, "签到 NEXT01", at) == "下周的培训 还没开始，11-27 12:00 开始后才能签到。"
    assert count(engine, TrainingSignup) == 0
    assert ask(engine, me, "签到 TODAY1", at) == "✅ 签到成功：今天的培训。"
    # a typo after checking in locks nothing and says so
    assert ask(engine, me, "签到 TODAY2", at) == "签到码不正确。您已经签到过了：今天的培训，无需再签到。"
    assert ask(engine, me, "签到 TODAY1", at) == "您已经签到过了：今天的培训。"
    report = mianzi("trainings", "attendance", str(later), "--json").json()
    assert report["people"] == []
    # someone else: a real wrong code counts against the open session only
    other = bound(engine, "P2")
    assert "还可以尝试 4 次" in ask(engine, other, "签到 NEXT02", at)
    assert "还没开始" in ask(engine, other, "签到 NEXT01", at)
    assert "还可以尝试 3 次" in ask(engine, other, "签到 NEXT03", at)
    assert ask(engine, other, "签到 TODAY1", at) == "✅ 签到成功：今天的培训。"
    assert mianzi("trainings", "attendance", str(today), "--json").json()["attended"] == 2


def test_an_import_counts_bad_rows_and_lists_each_rows_reasons_together(db_url: str, workdir: Path) -> None:
    partners = workdir / "partners.csv"
    partners.write_text("code,name,team,region,city_tier,industry,size,joined_on,role,locale\n"
                        "P001,王强,华东一队,华东,1,建材,large,2024-01-10,dealer,zh\n"
                        "P002,李娜,华东一队,华东,9,建材,small,2025-13-01,boss,fr\n"  # four errors
                        "P003,,华南队,华南,3,家电,medium,2026-10-01,dealer,zh\n",  # one
                        encoding="utf-8")
    ran = mianzi("partners", "import", str(partners))
    assert ran.code == 2
    assert ran.err.strip().splitlines() == [
        "导入失败：2 行有误，未导入任何数据。",
        "第 3 行：joined_on 没有这一天：2025-13-01；city_tier 必须是 1、2、3 或 一线、二线、三线，而不是 9；"
        "role 必须是 经销商、队长、管理员（或 dealer、captain、admin），而不是 boss；"
        "locale 必须是 中文、英文（或 zh、en），而不是 fr",
        "第 4 行：缺少 name"]


def test_an_admins_adjustment_refused_for_lack_of_points_is_worded_about_the_partner(
        engine: Engine, ids: dict[str, int]) -> None:
    earn(engine, ids["P1"], 230)
    boss = bound(engine, "BOSS")
    ask(engine, boss, "/lang zh")
    assert ask(engine, boss, "调整积分 P1 -5000 重复发放") == (
        "P1 经销商1 现有 230 积分，不够扣减 5,000 积分（差 4,770）。积分不能扣成负数。")
    ran = mianzi("points", "adjust", "P1", "-5000", "--reason", "重复发放")
    assert ran.code == 2 and ran.err.strip() == "P1 经销商1 现有 230 积分，不够扣减 5,000 积分（差 4,770）。积分不能扣成负数。"
    assert balance(engine, ids["P1"]) == 230


def test_the_cli_prints_program_time_and_says_so(engine: Engine, ids: dict[str, int]) -> None:
    earn(engine, ids["P2"], 500, at=NOW)  # 2026-11-20 04:00 UTC = 12:00 in Beijing
    assert "已提交兑换申请" in ask(engine, bound(engine, "P2"), "兑换 MUG")
    tid = training(engine, "今天的培训", NOW, "TODAY1")
    assert "签到成功" in ask(engine, bound(engine, "P1"), "签到 TODAY1", NOW + timedelta(minutes=7))
    for args in (("points", "show", "P2"), ("redemptions", "list"), ("trainings", "attendance", str(tid))):
        ran = mianzi(*args)
        assert ran.code == 0, ran.err
        assert "北京时间" in ran.out and "2026-11-20 12:0" in ran.out and "04:0" not in ran.out, (args, ran.out)
    assert "2026-11-20 12:07" in mianzi("trainings", "attendance", str(tid)).out
    assert "2026-11-20T04:00:00+00:00" in mianzi("points", "show", "P2", "--json").out  # JSON stays ISO 8601 UTC


def test_contests_say_beijing_time_and_end_on_the_last_day(engine: Engine, ids: dict[str, int]) -> None:
    from handlers.nudges import queue_final_hours, queue_weekly
    from tests.support import builders as b

    with session_scope(engine) as s:
        b.sales(s, {"id": "s1", "partner": "P1", "occurred_at": "2026-12-02T10:00", "amount": "12000"})
        b.contest(s, name="年终冲刺", start="2026-12-01", end="2026-12-31", tiers="铜牌=50000:100,银牌=100000:300",
                  prizes="1=5000,2=3000")
    me = bound(engine, "P1")
    at = NOW.replace(month=12, day=30)
    info = ask(engine, me, "比赛", at)
    assert "· 时间：2026-12-01 – 2026-12-31（北京时间）" in info and "Asia/Shanghai" not in info
    # one rule for money and one for points in the same reply
    assert "铜牌（≥ ¥50,000.00）100 积分，银牌（≥ ¥100,000.00）300 积分" in info
    assert "第 1 名 5,000 积分，第 2 名 3,000 积分" in info
    ask(engine, me, "/lang en")
    assert "2026-12-01 – 2026-12-31 (Beijing time)" in ask(engine, me, "/contests", at)
    ask(engine, me, "/lang zh")
    with session_scope(engine) as s:
        assert queue_weekly(s, at) == 1 and queue_final_hours(s, at) == 1
    texts = [p["text"] for p in outbox(engine, "weekly:").values()] + [
        p["text"] for p in outbox(engine, "final48:").values()]
    assert "比赛于 12-31 24:00 截止" in texts[0] and "12-31 24:00 截止。" in texts[1]
    assert not any("01-01" in text for text in texts)


def test_money_and_points_read_one_way_everywhere(engine: Engine, ids: dict[str, int]) -> None:
    earn(engine, ids["P1"], 99)
    me = bound(engine, "P1")
    assert ask(engine, me, "兑换 TV") == "积分不足：需要 5,000 积分，您现有 99 积分，还差 4,901 积分。"
    assert "TV 电视 —— 5,000 积分（还差 4,901 积分）" in ask(engine, me, "积分商城")
    boss = bound(engine, "BOSS")
    ask(engine, boss, "/lang zh")
    assert ask(engine, boss, "调整积分 P1 +12000 年终奖励") == "已为 经销商1（P1）调整 +12,000 积分（年终奖励），当前余额 12,099。"
    assert "+12,000" in ask(engine, me, "我的")
    assert "您的积分有一笔调整：+12,000（年终奖励），当前余额 12,099。" in [
        p["text"] for p in outbox(engine, "points:adjusted:").values()]


def test_a_captain_sees_what_the_number_is_and_honours_name_the_month_once(engine: Engine) -> None:
    from models import contests as contest_ops
    from tests.support import builders as b

    with session_scope(engine) as s:
        b.partners(s, {"code": "CAP", "name": "王队长", "team": "EAST", "role": "captain"},
                   {"code": "P1", "name": "经销商1", "team": "EAST"}, {"code": "P2", "name": "经销商2", "team": "EAST"})
        b.sales(s, {"id": "s1", "partner": "P1", "occurred_at": "2026-11-10T10:00", "amount": "4710"},
                {"id": "s2", "partner": "P2", "occurred_at": "2026-11-10T10:00", "amount": "9000"})
        b.targets(s, *({"partner": p, "period_start": "2026-11-01", "period_end": "2026-11-30", "target": "10000"}
                       for p in ("CAP", "P1", "P2")))
        b.contest(s, name="团队达成率赛", metric="attainment", scope="team", team_score="avg")
        named = b.contest(s, name="11月销售冠军", end="2026-11-15")
        plain = b.contest(s, name="季度冲刺", end="2026-11-10")
        for contest in (named, plain):
            contest_ops.close(s, contest.id, NOW)  # type: ignore[arg-type]
    captain, p1 = bound(engine, "CAP"), bound(engine, "P1")
    team = ask(engine, captain, "团队")
    assert "成员的个人目标达成率：" in team and "· 经销商1  47.1%\n" in team and "占团队" not in team
    assert "贡献" not in team
    rank = ask(engine, p1, "排行 团队达成率赛")
    assert "🙋 您的个人目标达成率：47.1%" in rank and "贡献" not in rank
    me = ask(engine, p1, "我的")
    assert "您的个人目标达成率 47.1%" in me
    assert "🏅 荣誉：11月销售冠军 第 2 名；2026年11月 季度冲刺 第 2 名" in me  # latest end first
