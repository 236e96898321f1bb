"""CSV imports through the CLI: good files, every kind of bad row, idempotency, money and time."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlmodel import Session

from models.tables import Partner, Sale, Target, Team
from tests.support.cli_runner import mianzi
from tests.support.csv_files import PARTNERS, SALES_HEADER, write


def count(session: Session, table: type) -> int:
    return session.execute(select(func.count()).select_from(table)).scalar_one()


@pytest.fixture
def with_partners(db_url: str, workdir: Path) -> Path:
    ran = mianzi("partners", "import", str(write(workdir / "partners.csv", PARTNERS)))
    assert ran.code == 0, ran.err
    return workdir


def test_partners_import_creates_teams_and_is_idempotent(with_partners: Path, session: Session) -> None:
    assert count(session, Partner) == 4
    assert sorted(session.execute(select(Team.code)).scalars()) == ["华东一队", "华南队"]
    p3 = session.execute(select(Partner).where(Partner.code == "P003")).scalar_one()
    assert (p3.city_tier, p3.locale, p3.role, str(p3.joined_on)) == (3, "en", "dealer", "2026-10-01")
    admin = session.execute(select(Partner).where(Partner.code == "A001")).scalar_one()
    assert (admin.role, admin.locale, admin.team_id) == ("admin", "zh", None)

    again = mianzi("partners", "import", str(with_partners / "partners.csv"))
    assert again.code == 0
    assert "新增 0，更新 0，未变 4" in again.out


def test_partners_update_by_code(with_partners: Path, session: Session) -> None:
    changed = PARTNERS.replace("P002,李娜,华东一队,华东,2", "P002,李娜,华南队,华南,2")
    ran = mianzi("partners", "import", str(write(with_partners / "p2.csv", changed)))
    assert ran.code == 0 and "更新 1" in ran.out
    p2 = session.execute(select(Partner).where(Partner.code == "P002")).scalar_one()
    team = session.get(Team, p2.team_id)
    assert (p2.region, team.code) == ("华南", "华南队")


def test_excel_bom_is_accepted(db_url: str, workdir: Path, session: Session) -> None:
    ran = mianzi("partners", "import", str(write(workdir / "bom.csv", PARTNERS, encoding="utf-8-sig")))
    assert ran.code == 0, ran.err
    assert count(session, Partner) == 4


def test_wrong_encoding_is_refused_with_line(db_url: str, workdir: Path, session: Session) -> None:
    """Neither UTF-8 nor GB18030 (a byte 0xFF is in neither): refused, with the line it is on."""
    lines = PARTNERS.encode().split(b"\n")
    lines[2] = lines[2].replace("李娜".encode(), b"\xff\xfe")
    (workdir / "bad.csv").write_bytes(b"\n".join(lines))
    ran = mianzi("partners", "import", str(workdir / "bad.csv"))
    assert ran.code == 2
    assert "UTF-8" in ran.err and "GB18030" in ran.err and "第 3 行" in ran.err
    assert count(session, Partner) == 0


def test_missing_column_is_refused(with_partners: Path, session: Session) -> None:
    ran = mianzi("sales", "import", str(write(with_partners / "s.csv", "id,partner,amount\nS1,P001,10\n")))
    assert ran.code == 2
    assert "缺少列" in ran.err and "occurred_at" in ran.err and "units" in ran.err
    assert count(session, Sale) == 0


def test_every_bad_row_is_listed_and_nothing_is_imported(with_partners: Path, session: Session) -> None:
    bad = SALES_HEADER + "\n".join([
        "S1,P001,2026-11-03T10:00:00,100.00,1,,C1,5",   # good
        "S2,NOPE,2026-11-03T10:00:00,100.00,1,,C1,5",   # unknown partner
        "S3,P001,2026-13-03,100.00,1,,C1,5",            # bad date
        "S4,P001,2026-11-03T10:00:00,-5,1,,C1,5",       # negative amount
        "S5,P001,2026-11-03T10:00:00,abc,1,,C1,5",      # non-numeric amount
        "S6,P001,2026-11-03T10:00:00,1.005,1,,C1,5",    # three decimals
        "S7,P001,2026-11-03T10:00:00,100,x,,C1,5",      # units not a number
        "S8,P001,2026-11-03T10:00:00,100,1,,C1,9",      # satisfaction out of range
        "S1,P001,2026-11-03T10:00:00,999.00,1,,C1,5",   # same id, other content
        ",P001,2026-11-03T10:00:00,100,1,,C1,5",        # missing id
    ]) + "\n"
    ran = mianzi("sales", "import", str(write(with_partners / "bad.csv", bad)))
    assert ran.code == 2
    lines = ran.err.strip().splitlines()
    assert lines[0] == "导入失败：9 行有误，未导入任何数据。"
    expected = {3: "未知的经销商编号 NOPE", 4: "occurred_at 没有这一天", 5: "amount 不能为负数", 6: "amount 不是有效金额",
                7: "amount 最多两位小数", 8: "units 不是整数", 9: "satisfaction 超出范围 1–5", 10: "编号 S1 已导入过，但内容不同",
                11: "缺少 id"}
    for line_no, reason in expected.items():
        assert any(line.startswith(f"第 {line_no} 行：") and reason in line for line in lines[1:]), (line_no, lines)
    assert count(session, Sale) == 0


def test_sales_reimport_skips_and_conflict_is_an_error(with_partners: Path, session: Session) -> None:
    good = SALES_HEADER + "S1,P001,2026-11-03T10:00:00,100.00,1,,C1,5\nS2,P002,2026-11-04T10:00:00,50,2,5,C2,\n"
    path = write(with_partners / "good.csv", good)
    assert mianzi("sales", "import", str(path)).code == 0
    again = mianzi("sales", "import", str(path))
    assert again.code == 0 and "新增 0" in again.out and "未变 2" in again.out
    assert count(session, Sale) == 2

    changed = SALES_HEADER + "S3,P001,2026-11-05T10:00:00,1,1,,,\nS2,P002,2026-11-04T10:00:00,51,2,5,C2,\n"
    ran = mianzi("sales", "import", str(write(with_partners / "changed.csv", changed)))
    assert ran.code == 2 and "第 3 行" in ran.err and "S2" in ran.err
    session.expire_all()
    assert count(session, Sale) == 2  # S3 was not imported either


def test_money_is_exact(with_partners: Path, session: Session) -> None:
    rows = SALES_HEADER + "".join(f"M{i},P001,2026-11-0{1 + i % 9}T10:00:00,{a},1,,,\n"
                                  for i, a in enumerate(["0.1", "0.2"] * 5))
    assert mianzi("sales", "import", str(write(with_partners / "m.csv", rows))).code == 0
    total = session.execute(select(func.sum(Sale.amount_fen))).scalar_one()
    assert Decimal(total) / 100 == Decimal("1.50")
    created = mianzi("contests", "create", "--name", "x", "--metric", "revenue", "--start", "2026-11-01",
                     "--end", "2026-11-30", "--json")
    shown = mianzi("contests", "show", str(created.json()["id"]), "--json").json()
    assert shown["standings"][0]["score"] == "1.50"


def test_time_without_offset_is_program_time(with_partners: Path, session: Session) -> None:
    rows = SALES_HEADER + ("T1,P001,2026-11-30T23:30:00,100,1,,,\n"      # Shanghai: still November
                           "T2,P001,2026-11-30T23:30:00+00:00,7,1,,,\n"   # UTC: 07:30 on 1 December in Shanghai
                           "T3,P001,2026-10-31 23:59:59,5,1,,,\n")        # October
    assert mianzi("sales", "import", str(write(with_partners / "t.csv", rows))).code == 0
    created = mianzi("contests", "create", "--name", "十一月", "--metric", "revenue", "--start", "2026-11-01",
                     "--end", "2026-11-30", "--json").json()
    shown = mianzi("contests", "show", str(created["id"]), "--json").json()
    mine = next(s for s in shown["standings"] if s["partner"] == "P001")
    assert mine["score"] == "100.00"
    assert mine["reached_at"] == "2026-11-30T15:30:00+00:00"


def test_targets_import_and_bad_rows(with_partners: Path, session: Session) -> None:
    good = "partner,period_start,period_end,target\nP001,2026-11-01,2026-11-30,100000\nP002,2026-11-01,2026-11-30,5e4\n"
    ran = mianzi("targets", "import", str(write(with_partners / "t.csv", good)))
    assert ran.code == 2 and "第 3 行" in ran.err and "不是有效金额" in ran.err
    assert count(session, Target) == 0
    fixed = good.replace("5e4", "50000")
    assert mianzi("targets", "import", str(write(with_partners / "t.csv", fixed))).code == 0
    again = mianzi("targets", "import", str(with_partners / "t.csv"))
    assert "未变 2" in again.out
    bad = "partner,period_start,period_end,target\nX,2026-11-01,2026-11-30,1\nP001,2026-11-30,2026-11-01,1\n"
    ran = mianzi("targets", "import", str(write(with_partners / "b.csv", bad)))
    assert ran.code == 2 and "未知的经销商编号 X" in ran.err and "早于开始日期" in ran.err


def test_bad_partner_rows(db_url: str, workdir: Path, session: Session) -> None:
    bad = ("code,name,team,region,city_tier,industry,size,joined_on,role,locale\n"
           "P1,甲,,,4,,,,dealer,zh\n"
           "P2,乙,,,1,,,2024-02-30,dealer,zh\n"
           "P3,丙,,,1,,,,boss,zh\n"
           "P1,丁,,,1,,,,dealer,fr\n"
           ",戊,,,1,,,,dealer,zh\n")
    ran = mianzi("partners", "import", str(write(workdir / "p.csv", bad)))
    assert ran.code == 2
    for fragment in ("第 2 行：city_tier", "第 3 行：joined_on", "第 4 行：role",
                     "第 5 行：locale 必须是 中文、英文（或 zh、en），而不是 fr；P1 在文件中重复", "第 6 行：缺少 code"):
        assert fragment in ran.err, fragment
    assert count(session, Partner) == 0


def test_missing_file(db_url: str, workdir: Path) -> None:
    ran = mianzi("sales", "import", str(workdir / "nope.csv"))
    assert ran.code == 2 and "找不到文件" in ran.err


def test_csv_chunks_and_records_store_the_same_rows(with_partners: Path, session: Session) -> None:
    """Whole-column checks (usual rows) and the row-by-row path (unusual ones) agree, value for value."""
    from models.imports.records import rows_from_records
    from models.imports.sale_rows import SALE_COLUMNS
    from models.imports.sales import import_sales
    from models.values import zone

    usual = ["U1,P001,2026-11-03T10:00:00,100.00,1,,C1,5", "U2,P002,2026-11-04 10:00:59,50.10,2,5.25,C2,",
             "U3,P003,2026-11-05T00:30:00,0.01,0,0.00,,1"]
    unusual = ["X1,P001,2026-11-03T10:00:00+08:00,100,1,,C1,5", "X2,P002, 2026-11-04T10:00:00.5 ,7.5,2,5.2,C2,",
               "X3,P003,2026-11-05,1,3,,,"]
    # Columns in another order, a blank line, a repeated row (unchanged) in the same file.
    body = "\n".join(usual + [""] + unusual + [usual[0]])
    reordered = "partner,id,occurred_at,amount,units,margin,customer,satisfaction\n" + "\n".join(
        f"{r.split(',')[1]},{r.split(',')[0]},{','.join(r.split(',')[2:])}" if r else "" for r in body.split("\n"))
    ran = mianzi("sales", "import", str(write(with_partners / "a.csv", reordered + "\n")))
    assert ran.code == 0, ran.err
    assert "新增 6" in ran.out and "未变 1" in ran.out
    records = [dict(zip(SALE_COLUMNS, ("R" + r).split(","), strict=True)) for r in usual + unusual]
    import_sales(session, rows_from_records(records, SALE_COLUMNS), zone("Asia/Shanghai"))
    session.flush()
    stored = {s.ext_id: s for s in session.execute(select(Sale)).scalars()}
    for ext_id in ("U1", "U2", "U3", "X1", "X2", "X3"):
        a, b = stored[ext_id], stored["R" + ext_id]
        assert (a.partner_id, a.occurred_at, a.amount_fen, a.units, a.margin_fen, a.customer, a.satisfaction) == (
            b.partner_id, b.occurred_at, b.amount_fen, b.units, b.margin_fen, b.customer, b.satisfaction), ext_id
    assert stored["U2"].margin_fen == 525 and stored["U3"].customer is None and stored["U1"].margin_fen is None


def test_repeated_id_in_one_file_with_other_content(with_partners: Path, session: Session) -> None:
    rows = SALES_HEADER + "D1,P001,2026-11-03T10:00:00,100.00,1,,C1,5\nD1,P001,2026-11-03T10:00:00,100.01,1,,C1,5\n"
    ran = mianzi("sales", "import", str(write(with_partners / "d.csv", rows)))
    assert ran.code == 2 and "第 3 行" in ran.err and "D1" in ran.err
    session.expire_all()
    assert count(session, Sale) == 0


def test_big_csv_is_parsed_in_a_forked_process(with_partners: Path, session: Session,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """Past the first chunk a CSV is parsed by a child process: same rows, same errors, same re-import."""
    import models.imports.sqlite_sales

    monkeypatch.setattr(models.imports.sqlite_sales, "SQLITE_CHUNK", 2)
    good = [f"F{i},P00{1 + i % 3},2026-11-0{1 + i % 9}T10:00:00,{i}.50,1,,C{i},\n" for i in range(9)]
    path = write(with_partners / "f.csv", SALES_HEADER + "".join(good))
    ran = mianzi("sales", "import", str(path))
    assert ran.code == 0 and "新增 9" in ran.out, ran.err
    again = mianzi("sales", "import", str(path))
    assert again.code == 0 and "未变 9" in again.out
    bad = SALES_HEADER + "".join(good[:5]) + "G1,NOPE,2026-11-01T10:00:00,1,1,,,\n" + good[2].replace(".50", ".51")
    ran = mianzi("sales", "import", str(write(with_partners / "g.csv", bad)))
    assert ran.code == 2 and "第 7 行" in ran.err and "第 8 行" in ran.err and "NOPE" in ran.err
    broken = SALES_HEADER + "".join(good[:5]).replace("F", "H") + "H9,P001,2026-11-01T10:00:00,1,1,,,\n"
    (with_partners / "h.csv").write_bytes(broken.encode() + b"H10,P001,\xff\n")
    ran = mianzi("sales", "import", str(with_partners / "h.csv"))
    assert ran.code == 2 and "第 8 行" in ran.err, ran.err
    session.expire_all()
    assert count(session, Sale) == 9


def test_quoted_fields_after_plain_chunks_keep_line_numbers(with_partners: Path, session: Session,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    import models.imports.sqlite_sales

    monkeypatch.setattr(models.imports.sqlite_sales, "SQLITE_CHUNK", 2)
    rows = (SALES_HEADER + "Q1,P001,2026-11-01T10:00:00,1,1,,C1,\r\n\r\nQ2,P001,2026-11-01T10:00:00,1,1,,C2,\n"
            + 'Q3,P002,2026-11-02T10:00:00,2,1,,"Shop, ""East""\nside",\n' + "Q4,P003,2026-11-03T10:00:00,-3,1,,,\n")
    ran = mianzi("sales", "import", str(write(with_partners / "q.csv", rows)))
    assert ran.code == 2 and "第 7 行" in ran.err and ran.err.count("第 ") == 1, ran.err
    ran = mianzi("sales", "import", str(write(with_partners / "q.csv", rows.replace("-3", "3"))))
    assert ran.code == 0 and "新增 4" in ran.out, ran.err
    session.expire_all()
    assert session.execute(select(Sale.customer).where(Sale.ext_id == "Q3")).scalar_one() == 'Shop, "East"\nside'
