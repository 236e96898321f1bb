"""`mianzi contests …`, `partners invite` and `db upgrade` through the real command line."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlmodel import Session

from models.tables import Contest, Invite
from tests.support.cli_runner import mianzi
from tests.support.csv_files import PARTNERS, write

FULL = ["--name", "11月销售冠军", "--metric", "attainment", "--scope", "team", "--team-score", "avg",
        "--start", "2026-11-01", "--end", "2026-11-30", "--grace", "6h", "--segment", "region=华东,city_tier=1",
        "--min-tenure-days", "90", "--min-score", "50", "--min-satisfaction", "3.5",
        "--prizes", "1=500,2=300,3=100", "--tiers", "bronze=80:50,silver=100:200,gold=120:500:2%",
        "--top", "5", "--recur", "monthly"]


def test_create_list_show(db_url: str, workdir: Path) -> None:
    assert mianzi("partners", "import", str(write(workdir / "p.csv", PARTNERS))).code == 0
    created = mianzi("contests", "create", *FULL, "--json")
    assert created.code == 0, created.err
    cid = created.json()["id"]
    listed = mianzi("contests", "list", "--json").json()
    assert [c["id"] for c in listed] == [cid]
    c = listed[0]
    assert (c["start"], c["end"]) == ("2026-10-31T16:00:00+00:00", "2026-11-30T16:00:00+00:00")
    assert (c["grace_seconds"], c["segment"], c["min_score"], c["min_satisfaction"]) == (
        21600, {"region": "华东", "city_tier": "1"}, "50.00", "3.50")
    assert c["tiers"][2] == {"name": "gold", "threshold": "120.00", "points": 500, "rebate_pct": "2"}
    assert (c["scope"], c["team_score"], c["top"], c["recur"], c["metric"]) == ("team", "avg", 5, "monthly",
                                                                               "attainment")
    shown = mianzi("contests", "show", str(cid), "--json").json()
    assert shown["status"] in ("upcoming", "active", "settling") and shown["late_sales"] == 0
    team = shown["standings"][0]
    assert team["team"] == "华东一队" and team["eligible"] is False
    assert [m["partner"] for m in team["members"]] == ["P001"]  # P002 is tier 2: outside the segment
    table = mianzi("contests", "show", str(cid))
    assert table.code == 0 and "11月销售冠军" in table.out and "华东一队" in table.out
    plain = mianzi("contests", "list")
    assert "目标达成率" in plain.out and "团队赛" in plain.out


@pytest.mark.parametrize(("flag", "value", "message"), [
    ("--metric", "profit", "--metric 的值 profit 无效"),
    ("--start", "2026-11-31", "无法识别的日期或时间"),
    ("--grace", "6 hours", "无法识别的时长"),
    ("--segment", "color=red", "无法识别的分组条件"),
    ("--prizes", "first=500", "无法识别的名次奖励"),
    ("--tiers", "gold=abc:5", "无法识别的阶梯"),
    ("--recur", "daily", "--recur 的值 daily 无效"),
    ("--top", "0", "--top 必须在 1 到 100 之间"),
    ("--min-satisfaction", "7", "最低满意度必须在 1 到 5 之间"),
])
def test_bad_flags_change_nothing(db_url: str, session: Session, flag: str, value: str, message: str) -> None:
    args = ["--name", "x", "--metric", "revenue", "--start", "2026-11-01", "--end", "2026-11-30"]
    if flag in args:
        args[args.index(flag) + 1] = value
    else:
        args += [flag, value]
    ran = mianzi("contests", "create", *args)
    assert ran.code == 2
    assert message in ran.err and len(ran.err.strip().splitlines()) == 1
    assert session.execute(select(func.count()).select_from(Contest)).scalar_one() == 0


def test_end_before_start(db_url: str) -> None:
    ran = mianzi("contests", "create", "--name", "x", "--metric", "revenue", "--start", "2026-11-30",
                 "--end", "2026-11-01")
    assert ran.code == 2 and "结束时间必须晚于开始时间" in ran.err


def test_show_unknown_contest(db_url: str) -> None:
    ran = mianzi("contests", "show", "999")
    assert ran.code == 2 and "没有编号为 999 的比赛" in ran.err


def test_invite(db_url: str, workdir: Path, session: Session) -> None:
    assert mianzi("partners", "import", str(write(workdir / "p.csv", PARTNERS))).code == 0
    doc = mianzi("partners", "invite", "P002", "--json").json()
    assert doc["partner"] == "P002" and len(doc["invite"]) == 10  # INVITE_LENGTH: see docs/security.md
    assert doc["telegram_link"] == f"https://t.me/MianziBot?start={doc['invite']}"
    invite = session.execute(select(Invite).where(Invite.code == doc["invite"])).scalar_one()
    assert (invite.expires_at - invite.created_at).days == 7 and invite.used_at is None
    second = mianzi("partners", "invite", "P002", "--json").json()
    assert second["invite"] != doc["invite"]
    unknown = mianzi("partners", "invite", "NOBODY")
    assert unknown.code == 2 and "没有编号为 NOBODY 的经销商" in unknown.err


def test_english_locale(db_url: str, workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from bot.settings import get_settings

    monkeypatch.setenv("MIANZI_LOCALE", "en")
    get_settings.cache_clear()
    ran = mianzi("contests", "show", "5")
    assert ran.code == 2 and ran.err.strip() == "No contest with id 5."


def test_db_upgrade(db_url: str) -> None:
    ran = mianzi("db", "upgrade")
    assert ran.code == 0 and "数据库已是最新结构" in ran.out
