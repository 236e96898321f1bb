"""The finance sheet of a closed contest (`mianzi contests results`, and the console later): one row per
participant and a totals row, as a table of cells, a CSV file or an .xlsx workbook.

Money cells are exact: yuan as `Decimal` from integer fen (the .xlsx cells are numbers formatted to
two decimals; the CSV holds the decimal text). The totals are the sums of the rows' fen, written as
values (not formulas), so the file reads back the same anywhere.
"""

from __future__ import annotations

import csv
from decimal import Decimal
from pathlib import Path
from typing import Any

from messages.render import reason_text, t
from models.finance import Results, fen_text
from models.rules import score_to_decimal

COLUMNS = ("code", "name", "team", "score", "rank", "tier", "prize_points", "revenue", "rebate_pct", "rebate")


def yuan(fen: int) -> Decimal:
    return Decimal(fen_text(fen))


def table(results: Results, locale: str) -> list[list[Any]]:
    """Header, one row per participant, the totals row."""
    metric = results.contest.metric
    rows: list[list[Any]] = [[t(f"results.col_{name}", locale) for name in COLUMNS] + [t("col.reason", locale)]]
    for x in results.lines:
        rows.append([x.code, x.name, x.team or "", score_to_decimal(x.score), x.rank if x.rank is not None else "",
                     x.tier or "", x.prize_points, yuan(x.revenue_fen),
                     Decimal(x.rebate_pct) if x.rebate_pct else "", yuan(x.rebate_fen),
                     reason_text(x.reason, metric, locale)])
    rows.append([t("results.total", locale), t("results.participants", locale, count=len(results.lines)), "", "", "",
                 "", results.prize_points, yuan(results.revenue_fen), "", yuan(results.rebate_fen), ""])
    return rows


def write(results: Results, path: Path, locale: str) -> None:
    """`.xlsx` or `.csv` (UTF-8 with a BOM, so that Excel on Chinese Windows opens it right), by the suffix."""
    rows = table(results, locale)
    if path.suffix.lower() == ".xlsx":
        _write_xlsx(rows, path, results.contest.name)
    else:
        with path.open("w", encoding="utf-8-sig", newline="") as stream:
            csv.writer(stream).writerows([["" if v is None else str(v) for v in row] for row in rows])


def _write_xlsx(rows: list[list[Any]], path: Path, title: str) -> None:
    from openpyxl import Workbook
    from openpyxl.styles import Font

    book = Workbook()
    sheet = book.active
    sheet.title = "".join(ch for ch in title if ch not in "[]:*?/\\")[:31] or "results"
    money = {COLUMNS.index("revenue"), COLUMNS.index("rebate")}
    for r, row in enumerate(rows, start=1):
        for c, value in enumerate(row):
            cell = sheet.cell(row=r, column=c + 1, value=value)
            if r > 1 and c in money and isinstance(value, Decimal):
                cell.number_format = "#,##0.00"
            if r == 1 or r == len(rows):
                cell.font = Font(bold=True)
    sheet.freeze_panes = "A2"
    book.save(path)
