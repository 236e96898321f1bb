"""Correcting rows in the sales file and `POST /api/sales`'s records (`reverses`, `reason`), through the CLI."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select
from sqlmodel import Session

import models.imports.sales
import models.imports.sqlite_sales
from models.tables import Sale
from tests.support.cli_runner import Ran, mianzi
from tests.support.csv_files import PARTNERS, SALES_HEADER, write

HEADER = "id,partner,occurred_at,amount,units,margin,customer,satisfaction,reverses,reason\n"
SALES = SALES_HEADER + ("o1,P001,2026-10-10T10:00:00,800,1,100,C9,5\n"
                        "d1,P001,2026-12-01T10:00:00,3000,3,,C1,5\n"
                        "d2,P002,2026-12-01T11:00:00,2000,1,,C2,\n")


@pytest.fixture
def program(engine: Engine, workdir: Path) -> Engine:
    assert mianzi("partners", "import", str(write(workdir / "partners.csv", PARTNERS))).code == 0
    assert mianzi("sales", "import", str(write(workdir / "sales.csv", SALES))).code == 0
    return engine


def imported(workdir: Path, text: str, name: str = "fix.csv") -> Ran:
    return mianzi("sales", "import", str(write(workdir / name, text)))


def board(contest: int) -> dict[str, dict]:
    return {x["partner"]: x for x in mianzi("contests", "show", str(contest), "--json").json()["standings"]}


def create(name: str, *period: str) -> int:
    ran = mianzi("contests", "create", "--name", name, "--metric", "revenue", *period, "--json")
    assert ran.code == 0, ran.err
    return int(ran.json()["id"])


def count(engine: Engine) -> int:
    with Session(engine) as s:
        return int(s.execute(select(func.count()).select_from(Sale)).scalar_one())


def test_a_file_reversal_moves_a_partner_down_and_reimporting_changes_nothing(program: Engine, workdir: Path) -> None:
    cid = create("12月冠军", "--start", "2026-12-01", "--end", "2099-12-31")
    assert board(cid)["P001"]["rank"] == 1
    fix = HEADER + ("r1,P001,,-3000,-3,,,,d1,客户退货\n"           # the negatives typed
                    "n1,P002,2026-12-02T09:00:00,100,1,,C2,,,\n"   # a plain sale beside it
                    "r2,P002,2026-12-03T09:00:00,,,,,,n1,\n")      # empty: filled; n1 is earlier in the file
    ran = imported(workdir, fix)
    assert ran.code == 0 and "新增 3" in ran.out, ran.err
    shown = board(cid)
    assert (shown["P001"]["score"], shown["P002"]["rank"], shown["P002"]["score"]) == ("0.00", 1, "2000.00")
    with Session(program) as s:
        got = {x.ext_id: x for x in s.execute(select(Sale)).scalars()}
    r1, r2 = got["r1"], got["r2"]
    assert (r1.amount_fen, r1.units, r1.margin_fen, r1.reverses, r1.reason) == (-300000, -3, None, got["d1"].id, "客户退货")
    assert (r1.occurred_at, r1.customer, r1.satisfaction) == (got["d1"].occurred_at, "C1", 5)  # the original's
    assert (r2.amount_fen, r2.units, r2.reverses, r2.reason) == (-10000, -1, got["n1"].id, None)
    assert r2.occurred_at != got["n1"].occurred_at  # given: kept
    total = count(program)
    again = imported(workdir, fix)
    assert again.code == 0 and "新增 0" in again.out and count(program) == total, again.out
    voided = mianzi("sales", "void", "d1", "--reason", "x")  # reversed by the file: not twice
    assert voided.code == 2 and "已经被更正过（更正记录 r1）" in voided.err


def test_a_reversal_in_a_closed_period_is_stored_and_late(program: Engine, workdir: Path) -> None:
    cid = create("10月冠军", "--start", "2026-10-01", "--end", "2026-10-31")
    assert mianzi("contests", "close-due").code == 0
    frozen = mianzi("contests", "results", str(cid), "--json").json()
    ran = imported(workdir, HEADER + "r9,P001,,-800,-1,-100,,,o1,录入错误\n")
    assert ran.code == 0 and "新增 1" in ran.out, ran.err
    doc = mianzi("contests", "show", str(cid), "--json").json()
    assert (doc["late_sales"], doc["late_corrections"]) == (1, 1)
    assert board(cid)["P001"]["score"] == "800.00"
    assert mianzi("contests", "results", str(cid), "--json").json() == frozen


def test_every_refusal_with_its_line_and_nothing_imported(program: Engine, workdir: Path) -> None:
    assert mianzi("sales", "void", "d2", "--reason", "退货").code == 0
    total = count(program)
    bad = HEADER + ("x1,P001,,-1,,,,,nope,\n"                       # line 2: unknown id
                    "x2,P001,,,,,,,d2,\n"                          # 3: another partner's
                    "x3,P002,,,,,,,d2,\n"                          # 4: reversed in the ledger (void)
                    "x4,P001,,-2999,,,,,d1,\n"                     # 5: not the negative
                    "x5,P001,,3000,-3,,,,d1,\n"                    # 6: positive: not the negative either
                    "x6,P001,2026-12-05T10:00:00,-5,1,,,,,\n"      # 7: negative without reverses
                    "x7,P001,,,,,,,d1,\n"                          # 8: fine …
                    "x8,P001,,,,,,,d1,\n"                          # 9: … but d1 is reversed by line 8
                    "x9,P001,,,,,,,void:d2,\n"                     # 10: a reversal itself
                    "y1,P001,,,,,,,later,\n"                       # 11: later in the file: not earlier
                    "later,P001,2026-12-06T10:00:00,1,1,,,,,\n"
                    "y2,P001,2026-12-06T10:00:00,1,1,,,,,说明\n")   # 13: a reason without reverses
    ran = imported(workdir, bad)
    assert ran.code == 2 and count(program) == total
    lines = {int(line.split(" ")[1]): line for line in ran.err.splitlines() if line.startswith("第 ")}
    assert sorted(lines) == [2, 3, 4, 5, 6, 7, 9, 10, 11, 13], ran.err
    assert "要冲销的销售记录 nope 不存在" in lines[2]
    assert "不属于这一行的经销商" in lines[3]
    assert "已经被冲销过（更正记录 void:d2）" in lines[4]
    assert "amount 必须是原销售的相反数 -3000.00" in lines[5] and "现在是 -2999.00" in lines[5]
    assert "现在是 3000.00" in lines[6] and "units" not in lines[6]
    assert lines[7].endswith("amount 不能为负数：-5")  # today's row error
    assert "已经被冲销过（更正记录 x7）" in lines[9]
    assert "本身就是一条更正记录" in lines[10]
    assert "later 不存在" in lines[11]
    assert "reason（更正原因）只用于冲销行" in lines[13]


def test_without_a_reverses_column_a_negative_amount_is_still_refused(program: Engine, workdir: Path) -> None:
    ran = imported(workdir, SALES_HEADER + "z1,P001,2026-12-05T10:00:00,-5,1,,,\n")
    assert ran.code == 2 and "第 2 行" in ran.err and "amount 不能为负数：-5" in ran.err


def test_the_bulk_path_and_the_careful_path_agree(program: Engine, workdir: Path, db_url: str,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """A file large enough for several chunks of both paths: what one wrote, the other finds unchanged."""
    monkeypatch.setattr(models.imports.sqlite_sales, "SQLITE_CHUNK", 50)
    monkeypatch.setattr(models.imports.sales, "CHUNK", 40)
    plain = "".join(f"b{i},P00{1 + i % 3},2026-12-0{1 + i % 9} 10:{i % 60:02d}:00,{i}.50,1,,C{i % 4},\n"
                    for i in range(300))
    ran = imported(workdir, SALES_HEADER + plain, "bulk.csv")  # bulk (on SQLite)
    assert ran.code == 0 and "新增 300" in ran.out, ran.err
    cid = create("12月冠军", "--start", "2026-12-01", "--end", "2099-12-31")
    before = board(cid)
    careful = HEADER + "".join(f"{row},,\n" for row in plain.splitlines())
    careful += "".join(f"rb{i},P00{1 + i % 3},,,,,,,b{i},\n" for i in range(0, 300, 7))
    careful += "c1,P001,2026-12-09T10:00:00,5,1,,,,,\nrc1,P001,,-5,-1,,,,c1,\n"  # the last chunk, earlier in the file
    ran = imported(workdir, careful, "careful.csv")  # the careful path: the 300 are unchanged
    assert ran.code == 0 and "新增 45" in ran.out and "未变 300" in ran.out, ran.out + ran.err
    after = board(cid)
    for code in ("P001", "P002", "P003"):
        lost = sum(i + 0.5 for i in range(0, 300, 7) if 1 + i % 3 == int(code[-1]))
        assert float(after[code]["score"]) == pytest.approx(float(before[code]["score"]) - lost)
    again = imported(workdir, SALES_HEADER + plain, "bulk.csv")  # and the bulk path finds the 300 unchanged
    assert again.code == 0 and "新增 0" in again.out and "未变 300" in again.out, again.out
    assert db_url
