"""Onboarding at scale and who is in (issue 14), through `mianzi …` and the fake WeChat API on 127.0.0.1:

- `partners invite --all | --segment | --unbound` issues a code for every chosen dealer and captain in
  one run (2,000 here), revokes their older unused codes, and writes the sheet (.xlsx with QR
  pictures, .csv) — read back with python-calamine, its pictures decoded back to their links;
- with the Official Account set up, one `QR_STR_SCENE` code per invite whose scene is the invite and
  whose life is the invite's (at most 30 days); following by it binds; a failed one is in the sheet;
- `--posters DIR`: an A5 page per partner at 300 dpi with both codes, which decode;
- `partners list` filters, `partners show` with points and contests, `teams list`.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import zxingcpp
from PIL import Image
from python_calamine import CalamineWorkbook
from sqlalchemy import Engine, func, select, update
from sqlmodel import Session

from bot.settings import get_settings
from models.db import session_scope
from models.identities import new_invite
from models.tables import ChatIdentity, Invite, Partner
from models.values import as_utc, utcnow
from tests.support import builders as b
from tests.support.builders import SH
from tests.support.cli_runner import Ran, mianzi
from tests.support.fake_wechat import FakeWeixin, http_client, reply_fields, sample_xml, serve_fake
from tests.support.official_account import make_app, post

N = 2000


def decoded(image: Image.Image) -> set[str]:
    return {r.text for r in zxingcpp.read_barcodes(image)}


def run(*args: str) -> Ran:
    ran = mianzi(*args)
    assert ran.code == 0, ran.err
    return ran


def pictures(xlsx: Path) -> list[bytes]:
    """The pictures of a workbook, in the order they were added."""
    with zipfile.ZipFile(xlsx) as z:
        names = sorted((n for n in z.namelist() if n.startswith("xl/media/")),
                       key=lambda n: int("".join(c for c in n if c.isdigit())))
        return [z.read(n) for n in names]


def sheet_rows(path: Path) -> list[list[Any]]:
    return CalamineWorkbook.from_path(str(path)).get_sheet_by_index(0).to_python()


def live_codes(engine: Engine) -> dict[str, str]:
    """Partner code → its one usable invite; fails if a partner has two."""
    now = utcnow()
    with Session(engine) as s:
        rows = s.execute(select(Partner.code, Invite.code).join(Invite, Invite.partner_id == Partner.id)
                         .where(Invite.used_at.is_(None), Invite.expires_at > now)).all()
    found: dict[str, str] = {}
    for partner, code in rows:
        assert partner not in found, f"{partner} has two live invites"
        found[partner] = code
    return found


@pytest.fixture
def wechat_on(db_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeWeixin]:
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    with serve_fake() as fake:
        for name, value in {"APP_ID": "wxAPP", "APP_SECRET": "secret", "TOKEN": "tok",
                            "API_URL": fake.base_url, "QRCODE_URL": f"{fake.base_url}showqrcode"}.items():
            monkeypatch.setenv(f"MIANZI_WECHAT_{name}", value)
        get_settings.cache_clear()
        yield fake
        get_settings.cache_clear()


def test_bulk_invite_of_2000_partners_in_one_run(engine: Engine, workdir: Path) -> None:
    with session_scope(engine) as s:
        b.partners(s, {"code": "ADM", "name": "李经理", "role": "admin"}, {"code": "GONE", "name": "已停用"},
                   *({"code": f"P{i:04d}", "name": f"经销商{i}", "team": "EAST" if i % 2 else "WEST",
                      "role": "captain" if i < 2 else "dealer"} for i in range(N)))
        old = {p.code: new_invite(s, p).code
               for p in s.execute(select(Partner).where(Partner.code.in_(["P0000", "P0001", "ADM"]))).scalars()}
        s.execute(update(Partner).where(Partner.code == "GONE").values(active=False))  # left the program

    ran = run("partners", "invite", "--all", "--out", "invites.xlsx", "--json")
    doc = ran.json()
    assert doc["count"] == N and doc["revoked"] == 2 and doc["wechat"] is False  # ADM's own code stays
    live = live_codes(engine)
    assert set(live) == {f"P{i:04d}" for i in range(N)} | {"ADM"} and live["ADM"] == old["ADM"]
    assert live["P0000"] != old["P0000"]
    with Session(engine) as s:
        assert s.execute(select(func.count()).select_from(Invite)).scalar_one() == N + 3

    rows = sheet_rows(workdir / "invites.xlsx")
    assert rows[0] == ["编号", "姓名", "团队", "邀请码", "有效期至（北京时间）", "Telegram 链接", "Telegram 二维码",
                       "微信二维码"]
    assert len(rows) == N + 1
    by_code = {r[0]: r for r in rows[1:]}
    first = by_code["P0001"]
    assert first[1:4] == ["经销商1", "EAST", live["P0001"]]
    assert first[5] == f"https://t.me/MianziBot?start={live['P0001']}" and first[7] == "未配置微信公众号"
    assert all(by_code[p][3] == code for p, code in live.items() if p != "ADM")
    expires = as_utc(datetime.fromisoformat(doc["expires_at"]))
    assert first[4] == expires.astimezone(SH).strftime("%Y-%m-%d %H:%M")  # program time
    images = pictures(workdir / "invites.xlsx")
    assert len(images) == N  # one Telegram QR code per row
    for i in (0, N // 2, N - 1):
        link = rows[1 + i][5]
        assert decoded(Image.open(io.BytesIO(images[i]))) == {link}

    csv = run("partners", "invite", "--segment", "team=EAST", "--out", "east.csv")
    assert "已为 1000 位经销商生成新的邀请码（原有 1000 个未使用的邀请码已作废）" in csv.out
    east = (workdir / "east.csv").read_text("utf-8-sig").splitlines()
    assert len(east) == 1001 and east[0].endswith("Telegram 链接,微信二维码")
    assert len(live_codes(engine)) == N + 1  # still one live code each


def test_choosing_who_is_invited_and_bad_requests(engine: Engine, workdir: Path) -> None:
    with session_scope(engine) as s:
        b.partners(s, {"code": "ADM", "name": "李经理", "role": "admin"},
                   {"code": "P1", "name": "一号", "team": "EAST", "region": "华东"},
                   {"code": "P2", "name": "二号", "team": "EAST", "region": "华北"},
                   {"code": "P3", "name": "三号", "team": "WEST", "region": "华东", "city_tier": "2"})
        p1 = s.execute(select(Partner).where(Partner.code == "P1")).scalar_one()
        s.add(ChatIdentity(partner_id=p1.id, platform="telegram", user_ref="111", bound_at=utcnow()))
    for args, err in [((), "只能选一种方式"), (("P1", "--all"), "只能选一种方式"), (("--all", "--unbound"), "只能选一种方式"),
                      (("--all", "--out", "x.txt"), "只支持 .xlsx, .csv"), (("--segment", "colour=red"), "colour=red"),
                      (("NOBODY",), "NOBODY"), (("--segment", "team=NORTH"), "没有符合条件的经销商")]:
        ran = mianzi("partners", "invite", *args)
        assert ran.code == 2 and err in ran.err, (args, ran.err)
    assert live_codes(engine) == {} and not (workdir / "x.txt").exists()  # nothing issued by any of them

    codes = lambda ran: sorted(i["partner"] for i in ran.json()["invites"])  # noqa: E731
    assert codes(run("partners", "invite", "--unbound", "--json")) == ["P2", "P3"]  # never the admin
    assert codes(run("partners", "invite", "--segment", "region=华东", "--unbound", "--json")) == ["P3"]
    assert codes(run("partners", "invite", "--segment", "city_tier=1,team=EAST", "--json")) == ["P1", "P2"]
    one = run("partners", "invite", "adm", "--json").json()  # by code: an admin too, in any case
    assert one["partner"] == "ADM" and one["telegram_link"].endswith(one["invite"]) and one["count"] == 1


def test_wechat_qr_codes_through_the_api(engine: Engine, db_url: str, workdir: Path, wechat_on: FakeWeixin,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    with session_scope(engine) as s:
        b.partners(s, *({"code": f"P{i}", "name": f"经销商{i}", "team": "EAST"} for i in range(1, 4)))
    wechat_on.fail_next("qrcode/create", 45009, "reach max api daily quota limit")
    doc = run("partners", "invite", "--all", "--out", "invites.xlsx", "--json").json()
    assert doc["wechat"] is True and doc["wechat_failed"] == 1
    creates = wechat_on.sent("qrcode/create")
    assert len(creates) == 3 and all(c.token == "TOKEN-1" for c in creates)  # one shared access token
    scenes = {c.body["action_info"]["scene"]["scene_str"]: c.body for c in creates}
    live = live_codes(engine)
    assert set(scenes) == set(live.values())
    assert all(body["action_name"] == "QR_STR_SCENE" and body["expire_seconds"] == 7 * 86400
               for body in scenes.values())
    made = [i for i in doc["invites"] if i["wechat_qr"].get("ticket")]
    failed = [i for i in doc["invites"] if "reason" in i["wechat_qr"]]
    assert len(made) == 2 and len(failed) == 1 and "45009" in failed[0]["wechat_qr"]["reason"]
    assert sorted(wechat_on.downloads) == sorted(i["wechat_qr"]["ticket"] for i in made)  # "+/=" quoted right

    rows = {r[0]: r for r in sheet_rows(workdir / "invites.xlsx")[1:]}
    assert rows[failed[0]["partner"]][7] == "未生成：45009 reach max api daily quota limit"
    images = [Image.open(io.BytesIO(p)) for p in pictures(workdir / "invites.xlsx")]
    texts = [decoded(i) for i in images]
    assert len(images) == 5  # three Telegram codes, two WeChat ones
    for i in made:
        assert {i["telegram_link"]} in texts and {f"http://weixin.qq.com/q/{i['wechat_qr']['ticket']}"} in texts

    # the code does what it says: following the Official Account by it binds the partner
    ticket = made[0]["wechat_qr"]["ticket"]
    scene = wechat_on.qrcodes[ticket]["action_info"]["scene"]["scene_str"]
    with http_client(make_app(db_url, engine)) as client:
        xml = sample_xml("subscribe_qrscene", EventKey=f"qrscene_{scene}", FromUserName="oNew")
        assert "绑定成功" in reply_fields(post(client, xml).text)["Content"]
    with Session(engine) as s:
        bound = s.execute(select(Partner.code).join(ChatIdentity, ChatIdentity.partner_id == Partner.id)).scalar_one()
    assert bound == made[0]["partner"]

    monkeypatch.setenv("MIANZI_INVITE_TTL_DAYS", "45")  # past WeChat's 30 days: the code lives 30
    get_settings.cache_clear()
    csv = run("partners", "invite", "P2", "--out", "p2.csv", "--json").json()
    assert wechat_on.sent("qrcode/create")[-1].body["expire_seconds"] == 2592000
    line = (workdir / "p2.csv").read_text("utf-8-sig").splitlines()[1]
    assert line.endswith(csv["wechat_qr"]["image_url"]) and "ticket=gQ" in line and "%2B%2F" in line
    assert wechat_on.downloads.count(csv["wechat_qr"]["ticket"]) == 0  # a CSV needs no picture


def test_posters_carry_both_codes(engine: Engine, workdir: Path, wechat_on: FakeWeixin) -> None:
    with session_scope(engine) as s:
        b.partners(s, {"code": "P1", "name": "张三", "team": "EAST"}, {"code": "P/2", "name": "李四"})
    doc = run("partners", "invite", "--all", "--posters", "posters", "--json").json()
    assert sorted(Path(p).name for p in doc["posters"]) == ["P1.png", "P_2.png"]
    for line in doc["invites"]:
        name = "P1.png" if line["partner"] == "P1" else "P_2.png"
        page = Image.open(workdir / "posters" / name)
        assert page.size == (1748, 2480) and round(page.info["dpi"][0]) == 300  # A5 at 300 dpi
        assert decoded(page) == {line["telegram_link"], f"http://weixin.qq.com/q/{line['wechat_qr']['ticket']}"}


def test_posters_without_wechat_or_without_a_font(engine: Engine, workdir: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    with session_scope(engine) as s:
        b.partners(s, {"code": "P1", "name": "张三"})
    doc = run("partners", "invite", "P1", "--posters", "out", "--json").json()
    assert decoded(Image.open(workdir / "out" / "P1.png")) == {doc["telegram_link"]}
    monkeypatch.setattr("messages.images.find_cjk_font", lambda configured=None: None)
    ran = mianzi("partners", "invite", "P1", "--posters", "again")
    assert ran.code == 2 and "没有找到中文字体" in ran.err and not (workdir / "again").exists()
    assert live_codes(engine) == {"P1": doc["invite"]}  # refused before anything was issued


@pytest.fixture
def program(engine: Engine) -> None:
    with session_scope(engine) as s:
        b.partners(s, {"code": "ADM", "name": "李经理", "role": "admin"},
                   {"code": "CAP", "name": "王队长", "team": "EAST", "role": "captain", "region": "华东"},
                   {"code": "P1", "name": "经销商1", "team": "EAST", "region": "华东", "city_tier": "2"},
                   {"code": "P2", "name": "经销商2", "team": "EAST", "region": "华北"},
                   {"code": "P3", "name": "经销商3", "team": "WEST", "region": "华东"})
        now = utcnow()
        for code, platform, ref in [("CAP", "wechat", "oCap"), ("P1", "telegram", "111"), ("P1", "wechat", "oP1")]:
            partner = s.execute(select(Partner).where(Partner.code == code)).scalar_one()
            s.add(ChatIdentity(partner_id=partner.id, platform=platform, user_ref=ref, bound_at=now,
                               last_seen_at=now if ref == "oP1" else None))


def test_partners_list_filters(engine: Engine, program: None) -> None:
    everyone = run("partners", "list", "--json").json()
    assert [p["code"] for p in everyone["partners"]] == ["ADM", "CAP", "P1", "P2", "P3"]
    p1 = everyone["partners"][2]
    assert (p1["team"], p1["region"], p1["city_tier"], p1["role"], p1["platforms"]) == (
        "EAST", "华东", 2, "dealer", ["telegram", "wechat"])
    assert p1["last_seen_at"].endswith("+08:00")  # program time
    codes = lambda *a: [p["code"] for p in run("partners", "list", *a, "--json").json()["partners"]]  # noqa: E731
    assert codes("--unbound") == ["ADM", "P2", "P3"]
    assert codes("--segment", "region=华东") == ["CAP", "P1", "P3"]
    assert codes("--segment", "team=EAST,region=华东", "--unbound") == []
    assert codes("--segment", "role=captain") == ["CAP"]
    table = run("partners", "list", "--segment", "team=EAST")
    assert "王队长" in table.out and "队长" in table.out and "未绑定" in table.out and "共 3 位，其中 2 位已绑定聊天账号。" in table.out
    bad = mianzi("partners", "list", "--segment", "city_tier=9")
    assert bad.code == 2 and "city_tier=9" in bad.err
    assert "没有符合条件的经销商。" in run("partners", "list", "--segment", "team=NORTH").out


def test_teams_list(engine: Engine, program: None) -> None:
    teams = run("teams", "list", "--json").json()
    assert teams == [
        {"code": "EAST", "name": "EAST", "members": 3, "bound": 2, "bound_pct": 66,
         "captains": [{"code": "CAP", "name": "王队长"}]},
        {"code": "WEST", "name": "WEST", "members": 1, "bound": 0, "bound_pct": 0, "captains": []}]
    table = run("teams", "list").out
    assert "2（66%）" in table and "王队长（CAP）" in table and "（无队长）" in table


def test_partners_show_points_and_contests(engine: Engine, program: None) -> None:
    today = datetime.now(SH).date()
    with session_scope(engine) as s:
        when = f"{today - timedelta(days=1)}T10:00"
        b.sales(s, {"id": "s1", "partner": "P1", "occurred_at": when, "amount": "5000"},
                {"id": "s2", "partner": "P2", "occurred_at": when, "amount": "9000"})
        b.contest(s, name="本月销售冠军", start=str(today - timedelta(days=5)), end=str(today + timedelta(days=5)))
        b.contest(s, name="西区专场", start=str(today - timedelta(days=5)), end=str(today + timedelta(days=5)),
                  segment="team=WEST")
    run("points", "adjust", "P1", "+120", "--reason", "欢迎积分")
    doc = run("partners", "show", "P1", "--json").json()
    assert (doc["region"], doc["city_tier"], doc["points"], doc["team"]) == ("华东", 2, 120, "EAST")
    assert [(c["name"], c["status"], c["rank"], c["score"]) for c in doc["contests"]] == [
        ("本月销售冠军", "active", 2, 500000)]
    text = run("partners", "show", "P1").out
    assert "积分余额：120" in text and "城市级别：二线" in text and "第 2 名，成绩 ¥5,000" in text
    assert "目前没有参加进行中的比赛。" in run("partners", "show", "ADM").out  # admins never take part
