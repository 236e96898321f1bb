"""Trainings through the chat: list by audience, join, reminders 24 h and 1 h before, check-in; the CLI."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine

from handlers.trainings import queue_reminders
from models import trainings
from models.db import session_scope
from models.errors import DataError
from models.tables import Training, TrainingSignup
from tests.support.cli_runner import mianzi
from tests.support.console import NOW, ask, bound
from tests.support.incentives import balance, count, entries, outbox, program

START = NOW + timedelta(days=2)  # 2026-11-22 12:00 Shanghai


@pytest.fixture
def ids(engine: Engine) -> dict[str, int]:
    return program(engine)


def training(engine: Engine, title: str = "渠道政策培训", start=START, segment: dict | None = None,  # type: ignore[no-untyped-def]
             points: int = 50, code: str = "ABC123", minutes: int = 90) -> int:
    with session_scope(engine) as s:
        return trainings.create(s, trainings.TrainingSpec(title, start, minutes * 60, "上海 会议室A",
                                                          segment, points, code), NOW).id  # type: ignore[return-value]


def remind(engine: Engine, now) -> int:  # type: ignore[no-untyped-def]
    with session_scope(engine) as s:
        return queue_reminders(s, now)


def test_list_by_audience_and_join(engine: Engine, ids: dict[str, int]) -> None:
    east = training(engine, "华东新品培训", segment={"region": "华东"})
    everyone = training(engine, "全员安全培训", start=START + timedelta(days=1), code="SAFE01")
    training(engine, "上月培训", start=NOW - timedelta(days=30), code="OLD001")
    p1, p3 = bound(engine, "P1"), bound(engine, "P3")
    listed = ask(engine, p1, "培训")
    assert listed.index("华东新品培训") < listed.index("全员安全培训") and "上月培训" not in listed
    assert "🕒 11-22 12:00–13:30 · 📍 上海 会议室A · 签到得 50 积分" in listed
    assert "华东新品培训" not in ask(engine, p3, "培训")  # 华南 is not the audience
    assert ask(engine, p1, f"报名 {east}").startswith(f"✅ 报名成功：#{east} 华东新品培训，11-22 12:00")
    assert ask(engine, p1, f"/training join {east}").startswith("您已经报名了")
    assert "#1 华东新品培训（已报名）" in ask(engine, p1, "/training")
    assert "面向其他学员" in ask(engine, p3, f"报名 {east}")
    assert "没有找到培训 #99" in ask(engine, p3, "报名 99")
    assert ask(engine, p3, "报名").startswith("用法：报名 培训编号")
    assert "报名成功" in ask(engine, p3, f"/join {everyone}")
    assert ask(engine, p3, f"报名{everyone}").startswith("您已经报名了")
    assert "不能再报名" in ask(engine, bound(engine, "P2"), f"报名 {everyone}", START + timedelta(days=1, minutes=31))
    boss = bound(engine, "BOSS")
    assert "华东新品培训" in ask(engine, boss, "/training")  # an admin sees every audience
    assert count(engine, TrainingSignup) == 2


def test_join_then_reminders_at_the_right_times_then_check_in(engine: Engine, ids: dict[str, int]) -> None:
    tid = training(engine)
    early, late = bound(engine, "P1"), bound(engine, "P2")
    assert "报名成功" in ask(engine, early, f"报名 {tid}")
    assert remind(engine, START - timedelta(hours=24, minutes=1)) == 0  # not yet
    assert remind(engine, START - timedelta(hours=23, minutes=58)) == 1
    assert remind(engine, START - timedelta(hours=23, minutes=50)) == 0  # idempotent
    key24 = f"training:{tid}:remind24:partner:{ids['P1']}"
    assert list(outbox(engine, "training:")) == [key24]
    text = outbox(engine)[key24]["text"]
    assert text.startswith("⏰ 培训提醒：明天这个时候开始") and "🕒 2026-11-22 12:00" in text and "签到可得 50 积分" in text

    # P2 joins three hours before: no "tomorrow" message for them, but the one-hour one
    assert "报名成功" in ask(engine, late, f"报名 {tid}", START - timedelta(hours=3))
    assert remind(engine, START - timedelta(hours=2)) == 0
    assert remind(engine, START - timedelta(minutes=59)) == 2
    assert remind(engine, START - timedelta(minutes=30)) == 0
    assert remind(engine, START + timedelta(minutes=5)) == 0  # started: nothing more
    keys = list(outbox(engine, "training:"))
    assert keys == [key24, f"training:{tid}:remind1:partner:{ids['P1']}", f"training:{tid}:remind1:partner:{ids['P2']}"]
    assert outbox(engine)[keys[1]]["text"].startswith("⏰ 培训提醒：1 小时后开始")

    before = balance(engine, ids["P1"])
    assert "还没开始，11-22 12:00 开始后才能签到" in ask(engine, early, "签到 ABC123", START - timedelta(minutes=5))
    assert ask(engine, early, "签到 WRONG1", START + timedelta(minutes=2)) == "签到码不正确，请核对后重试（还可以尝试 4 次）。"
    assert balance(engine, ids["P1"]) == before
    ok = ask(engine, early, "签到 abc123", START + timedelta(minutes=3))  # codes ignore case
    assert ok == f"✅ 签到成功：渠道政策培训。获得 50 积分，当前余额 {before + 50}。"
    assert ask(engine, early, "/checkin ABC123", START + timedelta(minutes=4)) == "您已经签到过了：渠道政策培训。"
    assert balance(engine, ids["P1"]) == before + 50 and entries(engine, ids["P1"])[-1] == ("earned", 50)
    assert "+50  培训签到" in ask(engine, early, "我的", START + timedelta(minutes=5))
    too_late = ask(engine, late, "签到 ABC123", START + timedelta(minutes=31))
    assert too_late == "签到已截止（12:30）：渠道政策培训 只能在开始后 30 分钟内签到。"
    assert balance(engine, ids["P2"]) == 0
    assert "现在没有正在签到的培训" in ask(engine, late, "签到 ABC999", START + timedelta(hours=3))
    assert ask(engine, late, "签到").startswith("用法：签到 签到码")


def test_wrong_codes_lock_check_in_and_walk_ins_count(engine: Engine, ids: dict[str, int]) -> None:
    tid = training(engine, points=0)
    guesser, walker = bound(engine, "P1"), bound(engine, "P2")
    at = START + timedelta(minutes=1)
    for left in (4, 3, 2, 1):
        assert f"还可以尝试 {left} 次" in ask(engine, guesser, f"签到 GUESS{left}", at)
    assert "已锁定" in ask(engine, guesser, "签到 GUESS0", at)
    assert "已锁定" in ask(engine, guesser, "签到 ABC123", at)  # even the right code, once locked
    assert ask(engine, walker, "签到 ABC123", at) == "✅ 签到成功：渠道政策培训。"  # no sign-up needed; 0 points
    assert balance(engine, ids["P2"]) == 0
    rows = mianzi("trainings", "attendance", str(tid), "--json").json()
    assert rows["joined"] == 0 and rows["attended"] == 1
    assert [(p["partner"], p["walk_in"], p["attended_at"] is not None) for p in rows["people"]] == [
        ("P1", True, False), ("P2", True, True)]


def test_create_validation(engine: Engine, ids: dict[str, int]) -> None:
    for spec, key in (({"title": " "}, "training.bad_title"), ({"place": ""}, "training.bad_place"),
                      ({"duration_seconds": 0}, "training.bad_duration"), ({"points": -1}, "training.bad_points"),
                      ({"code": "有 空格"}, "training.bad_code")):
        fields = {"title": "T", "start_at": START, "duration_seconds": 3600, "place": "P", "code": "ABC123", **spec}
        with pytest.raises(DataError) as exc, session_scope(engine) as s:
            trainings.create(s, trainings.TrainingSpec(**fields), NOW)  # type: ignore[arg-type]
        assert exc.value.key == key
    assert count(engine, Training) == 0


def test_cli_create_list_attendance(db_url: str, engine: Engine, ids: dict[str, int], workdir: Path) -> None:
    ran = mianzi("trainings", "create", "--title", "新品培训", "--start", "2026-11-22T14:00", "--duration", "90m",
                 "--place", "https://meeting.example/123", "--segment", "region=华东", "--points", "50",
                 "--code", "ABC123", "--json")
    assert ran.code == 0, ran.err
    made = ran.json()
    assert made["code"] == "ABC123" and made["start"].startswith("2026-11-22T06:00:00")  # 14:00 Shanghai in UTC
    plain = mianzi("trainings", "create", "--title", "线上答疑", "--start", "2026-11-23T10:00", "--place", "腾讯会议")
    assert plain.code == 0 and "签到码" in plain.out  # a random code when none is given
    assert mianzi("trainings", "create", "--title", "x", "--start", "tomorrow", "--place", "y").code == 2
    assert mianzi("trainings", "create", "--title", "x", "--start", "2026-11-23T10:00", "--place", "y",
                  "--duration", "ninety").code == 2
    assert mianzi("trainings", "create", "--title", "x", "--start", "2026-11-23T10:00", "--place", "y",
                  "--segment", "planet=mars").code == 2
    listed = mianzi("trainings", "list", "--json").json()
    assert [(t["title"], t["segment"], t["joined"]) for t in listed] == [("新品培训", {"region": "华东"}, 0),
                                                                          ("线上答疑", {}, 0)]
    me = bound(engine, "P1")
    assert "报名成功" in ask(engine, me, f"报名 {made['id']}")
    start = START.replace(hour=6)  # 14:00 Shanghai
    assert "签到成功" in ask(engine, me, "签到 ABC123", start + timedelta(minutes=10))
    report = mianzi("trainings", "attendance", str(made["id"]), "--json").json()
    assert report["joined"] == 1 and report["attended"] == 1 and report["people"][0]["points"] == 50
    assert "P1" in mianzi("trainings", "attendance", str(made["id"])).out
    assert mianzi("trainings", "attendance", "99").code == 2
    assert "新品培训" in mianzi("trainings", "list").out
