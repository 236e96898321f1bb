"""Files as Excel writes them, through the real CLI: GBK/GB18030 and BOM CSV files, `.xlsx` workbooks
for every import, and values as people type them (or refused, with their line, when ambiguous)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from sqlalchemy import func, select
from sqlmodel import Session

import models.imports.sqlite_sales
from models.tables import Partner, RewardItem, Sale, Target
from tests.support.cli_runner import mianzi
from tests.support.csv_files import PARTNERS, SALES_HEADER, write

CATALOG = "sku,name_zh,name_en,points,stock,active\nMUG,马克杯,Mug,300,10,是\nPEN,钢笔,,100,0,下架\n"
TARGETS = "partner,period_start,period_end,target\nP001,2026年11月1日,2026年11月30日,100000\n"


def xlsx(path: Path, *sheets: tuple[str, list[list[Any]]]) -> Path:
    """A workbook as Excel saves it: typed cells (numbers, dates, booleans), `None` for an empty cell."""
    book = openpyxl.Workbook()
    book.remove(book.active)
    for title, rows in sheets:
        sheet = book.create_sheet(title)
        for row in rows:
            sheet.append(row)
    book.save(path)
    return path


def count(session: Session, table: type) -> int:
    session.expire_all()
    return session.execute(select(func.count()).select_from(table)).scalar_one()


def sales_of(session: Session) -> dict[str, Sale]:
    session.expire_all()
    return {s.ext_id: s for s in session.execute(select(Sale)).scalars()}


def utc(sale: Sale) -> datetime:
    return sale.occurred_at.replace(tzinfo=UTC) if sale.occurred_at.tzinfo is None else sale.occurred_at


@pytest.fixture
def with_partners(db_url: str, workdir: Path) -> Path:
    ran = mianzi("partners", "import", str(write(workdir / "partners.csv", PARTNERS)))
    assert ran.code == 0, ran.err
    return workdir


# --- encodings --------------------------------------------------------------------------------------


def test_a_gbk_file_as_excel_saves_it_on_chinese_windows(db_url: str, workdir: Path, session: Session) -> None:
    ran = mianzi("partners", "import", str(write(workdir / "gbk.csv", PARTNERS, encoding="gbk")))
    assert ran.code == 0, ran.err
    assert "新增 4" in ran.out and "GB18030（兼容 GBK）" in ran.out
    assert session.execute(select(Partner.name).where(Partner.code == "P001")).scalar_one() == "王强"


def test_a_character_only_gb18030_has(db_url: str, workdir: Path, session: Session) -> None:
    text = PARTNERS.replace("王强", "𠮷野")
    with pytest.raises(UnicodeEncodeError):
        text.encode("gbk")
    ran = mianzi("partners", "import", str(write(workdir / "gb18030.csv", text, encoding="gb18030")))
    assert ran.code == 0, ran.err
    assert "GB18030" in ran.out
    assert session.execute(select(Partner.name).where(Partner.code == "P001")).scalar_one() == "𠮷野"


def test_bom_and_plain_utf8_say_so(db_url: str, workdir: Path) -> None:
    bom = mianzi("partners", "import", str(write(workdir / "bom.csv", PARTNERS, encoding="utf-8-sig")))
    assert bom.code == 0 and "UTF-8（带 BOM）" in bom.out
    plain = mianzi("partners", "import", str(write(workdir / "plain.csv", PARTNERS)))
    assert plain.code == 0 and "文件按 UTF-8 读取" in plain.out and "未变 4" in plain.out


def test_gbk_targets_and_catalog(with_partners: Path, session: Session) -> None:
    ran = mianzi("targets", "import", str(write(with_partners / "t.csv", TARGETS, encoding="gbk")))
    assert ran.code == 0 and "GB18030" in ran.out, ran.err
    ran = mianzi("rewards", "import", str(write(with_partners / "c.csv", CATALOG, encoding="gbk")))
    assert ran.code == 0 and "GB18030" in ran.out, ran.err
    assert session.execute(select(RewardItem.name_zh).where(RewardItem.sku == "MUG")).scalar_one() == "马克杯"


def test_a_large_gbk_sales_file_through_the_bulk_path(with_partners: Path, session: Session,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """Many chunks (parsed in a forked process on SQLite) of two-byte characters: every one whole,
    wherever the reads cut the bytes; a bad row in a late chunk is reported by its line."""
    monkeypatch.setattr(models.imports.sqlite_sales, "SQLITE_CHUNK", 200)
    rows = [f"G{i},P00{1 + i % 3},2026-11-0{1 + i % 9}T10:00:00,{i}.50,1,,客户{'甲乙丙'[i % 3] * (1 + i % 7)},"
            for i in range(2000)]
    path = write(with_partners / "g.csv", SALES_HEADER + "\n".join(rows) + "\n", encoding="gbk")
    ran = mianzi("sales", "import", str(path))
    assert ran.code == 0, ran.err
    assert "新增 2000" in ran.out and "GB18030" in ran.out
    stored = dict(session.execute(select(Sale.ext_id, Sale.customer)).all())
    assert all(stored[f"G{i}"] == f"客户{'甲乙丙'[i % 3] * (1 + i % 7)}" for i in range(2000))

    rows[1800] = rows[1800].replace(",1,,", ",一,,")
    ran = mianzi("sales", "import", str(write(with_partners / "g2.csv", SALES_HEADER + "\n".join(rows) + "\n",
                                              encoding="gbk")))
    assert ran.code == 2 and "第 1802 行：units 不是整数：一" in ran.err


# --- XLSX -------------------------------------------------------------------------------------------


def test_partners_from_xlsx(db_url: str, workdir: Path, session: Session) -> None:
    header = PARTNERS.splitlines()[0].split(",")
    path = xlsx(workdir / "p.xlsx", ("经销商名单", [
        header,
        [1001, "王强", "华东一队", "华东", 1, "建材", "large", date(2024, 1, 10), "队长", "中文"],
        ["p002 ", "李娜", "华东一队", "华东", "二线", "建材", "small", datetime(2025, 3, 1), "经销商", "英文"],
        [],
        ["A001", "赵经理", None, None, None, None, None, None, "管理员", None],
    ]))
    ran = mianzi("partners", "import", str(path))
    assert ran.code == 0, ran.err
    assert "新增 3" in ran.out and "Excel 工作表“经销商名单”" in ran.out
    got = {p.code: (p.city_tier, p.joined_on, p.role, p.locale) for p in session.execute(select(Partner)).scalars()}
    assert got == {"1001": (1, date(2024, 1, 10), "captain", "zh"), "P002": (2, date(2025, 3, 1), "dealer", "en"),
                   "A001": (None, None, "admin", "zh")}


def test_targets_and_catalog_from_xlsx(with_partners: Path, session: Session) -> None:
    path = xlsx(with_partners / "t.xlsx", ("目标", [
        ["partner", "period_start", "period_end", "target"],
        ["P001", date(2026, 11, 1), datetime(2026, 11, 30), 100000],
        ["P002", "2026/11/1", "2026年11月30日", 12000.5],
    ]))
    ran = mianzi("targets", "import", str(path))
    assert ran.code == 0, ran.err
    assert sorted(session.execute(select(Target.target_fen)).scalars()) == [1200050, 10000000]
    path = xlsx(with_partners / "c.xlsx", ("catalog", [
        ["sku", "name_zh", "name_en", "points", "stock", "active"],
        ["MUG", "马克杯", "Mug", 300, 10.0, True],
        ["PEN", "钢笔", None, 100, 0, False],
    ]))
    ran = mianzi("rewards", "import", str(path))
    assert ran.code == 0, ran.err
    assert "新增 2" in ran.out and "Excel 工作表“catalog”" in ran.out
    items = {i.sku: (i.points, i.stock, i.active) for i in session.execute(select(RewardItem)).scalars()}
    assert items == {"MUG": (300, 10, True), "PEN": (100, 0, False)}


SALE_ROW = ["id", "partner", "occurred_at", "amount", "units", "margin", "customer", "satisfaction"]


def test_sales_from_xlsx_typed_cells_and_the_sheets_line_numbers(with_partners: Path, session: Session) -> None:
    path = xlsx(with_partners / "s.xlsx", ("说明", [["这一页不是数据"]]), ("销售", [
        SALE_ROW,
        ["X1", "P001", datetime(2026, 11, 30, 23, 30), 12000.5, 3, None, "客户甲", 5],
        [1001, "p002", datetime(2026, 12, 1, 8, 0), 99, 1.0, 12.25, 42, None],
        [],
        ["X3", "P003", "2026/12/1 8:00", "¥12,000", 2, None, None, None],
    ]))
    ran = mianzi("sales", "import", str(path), "--sheet", "销售")
    assert ran.code == 0, ran.err
    assert "新增 3" in ran.out and "Excel 工作表“销售”" in ran.out
    got = sales_of(session)
    assert (got["X1"].amount_fen, got["X1"].units, got["X1"].satisfaction) == (1200050, 3, 5)
    assert utc(got["X1"]) == datetime(2026, 11, 30, 15, 30, tzinfo=UTC)  # read in the program zone
    assert (got["1001"].customer, got["1001"].margin_fen, utc(got["1001"])) == (
        "42", 1225, datetime(2026, 12, 1, 0, 0, tzinfo=UTC))
    assert (got["X3"].amount_fen, utc(got["X3"])) == (1200000, datetime(2026, 12, 1, 0, 0, tzinfo=UTC))

    bad = xlsx(with_partners / "bad.xlsx", ("销售", [
        [], [],  # the header on the sheet's third row
        SALE_ROW,
        ["Y1", "P001", datetime(2026, 11, 3, 10), 1, 1, None, None, None],
        [],
        ["Y2", "P001", datetime(2026, 11, 3, 10), -1, 1, None, None, None],
        ["Y3", "NOPE", datetime(2026, 11, 3, 10), 1, 2.5, None, None, 6],
    ]))
    ran = mianzi("sales", "import", str(bad))
    assert ran.code == 2
    lines = ran.err.splitlines()
    assert "第 6 行：amount 不能为负数：-1" in lines, ran.err
    row7 = next(line for line in lines if line.startswith("第 7 行："))  # a row's reasons on its one line
    for fragment in ("未知的经销商编号 NOPE", "units 不是整数：2.5", "satisfaction 超出范围 1–5：6"):
        assert fragment in row7, (fragment, ran.err)
    assert count(session, Sale) == 3


def test_a_large_xlsx_sales_sheet_through_the_bulk_path(with_partners: Path, session: Session,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(models.imports.sqlite_sales, "SQLITE_CHUNK", 200)
    # (a time of exactly midnight comes back from python-calamine as a date: the same sale all the same)
    rows = [[f"B{i}", f"P00{1 + i % 3}", datetime(2026, 11, 1 + i % 9, 0 if i % 50 else 10), i + 0.5, 1, None,
             f"C{i % 4}", None] for i in range(2000)]
    ran = mianzi("sales", "import", str(xlsx(with_partners / "big.xlsx", ("Sheet1", [SALE_ROW, *rows]))))
    assert ran.code == 0, ran.err
    assert "新增 2000" in ran.out
    got = sales_of(session)
    assert (utc(got["B1"]), utc(got["B50"])) == (datetime(2026, 11, 1, 16, tzinfo=UTC), datetime(2026, 11, 6, 2, tzinfo=UTC))
    assert session.execute(select(func.sum(Sale.amount_fen))).scalar_one() == sum(i * 100 + 50 for i in range(2000))
    rows[1900][3] = "12.000,50"
    ran = mianzi("sales", "import", str(xlsx(with_partners / "big2.xlsx", ("Sheet1", [SALE_ROW, *rows]))))
    assert ran.code == 2 and "第 1902 行：amount 的写法有歧义：12.000,50" in ran.err


def test_xlsx_sheet_choice_and_bad_workbooks(with_partners: Path) -> None:
    path = xlsx(with_partners / "two.xlsx", ("A", [["sku"]]), ("B", [["x"]]))
    ran = mianzi("targets", "import", str(path), "--sheet", "C")
    assert ran.code == 2 and "没有名为“C”的工作表（现有：A、B）" in ran.err
    ran = mianzi("targets", "import", str(path))
    assert ran.code == 2 and "缺少列" in ran.err
    ran = mianzi("targets", "import", str(write(with_partners / "t.csv", TARGETS)), "--sheet", "A")
    assert ran.code == 2 and "--sheet 只适用于 Excel 文件" in ran.err
    broken = with_partners / "broken.xlsx"
    broken.write_bytes(path.read_bytes()[:300])
    ran = mianzi("targets", "import", str(broken))
    assert ran.code == 2 and "无法读取这个 Excel 文件" in ran.err
    old = with_partners / "old.xls"
    old.write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 504)
    ran = mianzi("targets", "import", str(old))
    assert ran.code == 2 and "旧版 Excel 文件" in ran.err
    empty = xlsx(with_partners / "empty.xlsx", ("A", []))
    ran = mianzi("targets", "import", str(empty))
    assert ran.code == 2 and "文件是空的" in ran.err


# --- values as people type them -----------------------------------------------------------------------


def test_amounts_dates_and_codes_as_people_type_them(with_partners: Path, session: Session,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """On SQLite the first chunk is all plain (the fast column checks), the second typed (each value
    parsed with care): both give the same sales."""
    monkeypatch.setattr(models.imports.sqlite_sales, "SQLITE_CHUNK", 4)
    plain = ["N1,P001,2026-12-01T08:00:00,12000.50,1,,,", "N2,P001,2026-12-01 00:00:00,12000.00,1,,,",
             "N3,P001,2026-12-01T00:00:00,12000,1,,,", "N4,P002,2026-12-01T08:00:00,12000.00,1,,,"]
    typed = ['T1,P001,2026/12/1 8:00,"12,000.50",1,,,', "T2, p001 ,2026/12/01,¥12000,1,,,",
             'T3,p001,2026-12-1,"￥12,000",1,,,', "T4,P002,2026年12月1日 8:00,1.2万,1,,,",
             "T5,P002,2026年12月1日,¥ 1.2万,1,,,"]
    ran = mianzi("sales", "import", str(write(with_partners / "s.csv", SALES_HEADER + "\n".join(plain + typed))))
    assert ran.code == 0, ran.err
    got = {k: (s.partner_id, utc(s), s.amount_fen) for k, s in sales_of(session).items()}
    for mine, theirs in (("T1", "N1"), ("T2", "N2"), ("T3", "N3"), ("T4", "N4")):
        assert got[mine] == got[theirs], mine
    assert got["T5"] == (got["N4"][0], got["N2"][1], 1200000)

    targets = 'partner,period_start,period_end,target\n p003,2026/12/1,2026年12月31日,"¥1,000,000"\n'
    assert mianzi("targets", "import", str(write(with_partners / "t.csv", targets))).code == 0
    target = session.execute(select(Target)).scalar_one()
    assert (target.period_start, target.period_end, target.target_fen) == (date(2026, 12, 1), date(2026, 12, 31),
                                                                          100000000)


def test_partner_words_in_chinese_and_codes_in_any_case(db_url: str, workdir: Path, session: Session) -> None:
    partners = ("code,name,team,region,city_tier,industry,size,joined_on,role,locale\n"
                " d1 ,甲,,,一线,,,2024/1/10,经销商,中文\n"
                "d2,乙,,,三线,,,2024年1月10日,队长,英文\n"
                "D3,丙,,,2,,,,管理员,\n")
    ran = mianzi("partners", "import", str(write(workdir / "p.csv", partners)))
    assert ran.code == 0, ran.err
    got = {p.code: (p.city_tier, p.role, p.locale) for p in session.execute(select(Partner)).scalars()}
    assert got == {"D1": (1, "dealer", "zh"), "D2": (3, "captain", "en"), "D3": (2, "admin", "zh")}
    again = mianzi("partners", "import", str(write(workdir / "p2.csv", partners.replace(" d1 ", "D1"))))
    assert "新增 0，更新 0，未变 3" in again.out
    dup = mianzi("partners", "import", str(write(workdir / "p3.csv", partners + "D1,丁,,,,,,,,\n")))
    assert dup.code == 2 and "第 5 行：D1 在文件中重复（首次出现在第 2 行）" in dup.err
    invite = mianzi("partners", "invite", "d2", "--json")
    assert invite.code == 0, invite.err


def test_ambiguous_values_are_refused_with_their_line_and_reason(with_partners: Path, session: Session) -> None:
    rows = ['A1,P001,2026-11-03T10:00:00,"12.000,50",1,,,',
            'A2,P001,2026-11-03T10:00:00,"1,2",1,,,',
            "A3,P001,2026/13/01,1,1,,,",
            "A4,P001,12/01/2026,1,1,,,",
            "A5,P001,12/01/2026 8:00,1,1,,,",
            "A6,P001,2026/12/1 25:00,1,1,,,",
            "A7,P001,2026-11-03T10:00:00,1.2345678万,1,,,",
            "A8,P001,2026-11-03T10:00:00,¥-5,1,,,"]
    ran = mianzi("sales", "import", str(write(with_partners / "a.csv", SALES_HEADER + "\n".join(rows) + "\n")))
    assert ran.code == 2
    expected = ["第 2 行：amount 的写法有歧义：12.000,50（千位用逗号、小数用句点，如 12,000.50）",
                "第 3 行：amount 的写法有歧义：1,2",
                "第 4 行：occurred_at 没有这一天：2026/13/01",
                "第 5 行：occurred_at 的日期有歧义：12/01/2026（无法确定哪个是月、哪个是日",
                "第 6 行：occurred_at 的日期有歧义：12/01/2026 8:00",
                "第 7 行：occurred_at 不是有效时间：2026/12/1 25:00",
                "第 8 行：amount 最多两位小数：1.2345678万",
                "第 9 行：amount 不能为负数：¥-5"]
    for fragment in expected:
        assert fragment in ran.err, (fragment, ran.err)
    assert count(session, Sale) == 0

    targets = ("partner,period_start,period_end,target\n"
               "P001,12/01/2026,2026-12-31,100\nP001,2026-12-01,2026/02/30,100\nP001,2026-12-01,2026-12-31,\"1,00\"\n")
    ran = mianzi("targets", "import", str(write(with_partners / "t.csv", targets)))
    assert ran.code == 2
    for fragment in ("第 2 行：period_start 的日期有歧义：12/01/2026", "第 3 行：period_end 没有这一天：2026/02/30",
                     "第 4 行：target 的写法有歧义：1,00"):
        assert fragment in ran.err, (fragment, ran.err)
    partners = ("code,name,team,region,city_tier,industry,size,joined_on,role,locale\n"
                "Q1,甲,,,四线,,,2024/1/10 8:00,老板,日文\n")
    ran = mianzi("partners", "import", str(write(with_partners / "p.csv", partners)))
    assert ran.code == 2
    row2 = next(line for line in ran.err.splitlines() if line.startswith("第 2 行："))
    for fragment in ("city_tier 必须是 1、2、3 或 一线、二线、三线，而不是 四线", "joined_on 不是有效日期",
                     "role 必须是 经销商、队长、管理员", "locale 必须是 中文、英文"):
        assert fragment in row2, (fragment, ran.err)
