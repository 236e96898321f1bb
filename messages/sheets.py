"""Writing a table for people: `.xlsx` (openpyxl, with pictures in cells) or `.csv` (UTF-8 with a BOM,
which Excel on Chinese Windows opens as UTF-8 rather than GBK)."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from models.errors import DataError

FORMATS = (".xlsx", ".csv")


@dataclass
class Sheet:
    """Headings, rows of values, and PNG pictures by (row index, column index), drawn `picture_px` wide."""

    title: str
    headers: Sequence[str]
    rows: list[list[Any]] = field(default_factory=list)
    pictures: dict[tuple[int, int], bytes] = field(default_factory=dict)
    picture_px: int = 120


def check_format(path: Path) -> None:
    """Refuse an output name we cannot write before anything is done."""
    if path.suffix.lower() not in FORMATS:
        raise DataError("onboard.bad_out_format", value=str(path), formats=", ".join(FORMATS))


def write(path: Path, sheet: Sheet) -> Path:
    check_format(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() == ".csv":
        with path.open("w", encoding="utf-8-sig", newline="") as stream:
            writer = csv.writer(stream)
            writer.writerow(sheet.headers)
            writer.writerows(["" if v is None else v for v in row] for row in sheet.rows)
        return path
    return _xlsx(path, sheet)


def _xlsx(path: Path, sheet: Sheet) -> Path:
    from openpyxl import Workbook
    from openpyxl.drawing.image import Image as Picture
    from openpyxl.styles import Alignment, Font
    from openpyxl.utils import get_column_letter

    book = Workbook()
    ws = book.active
    ws.title = sheet.title[:31]
    ws.append(list(sheet.headers))
    for cell in ws[1]:
        cell.font = Font(bold=True)
    for row in sheet.rows:
        ws.append(row)
    picture_cols = {c for _, c in sheet.pictures}
    for c, header in enumerate(sheet.headers):
        letter = get_column_letter(c + 1)
        longest = max([len(str(header))] + [len(str(r[c])) for r in sheet.rows[:200] if r[c] is not None])
        ws.column_dimensions[letter].width = (sheet.picture_px / 7 + 2) if c in picture_cols else min(60, longest + 4)
    if sheet.pictures:
        rows_with = {r for r, _ in sheet.pictures}
        middle = Alignment(vertical="center")
        for r, cells in enumerate(ws.iter_rows(min_row=2)):  # one pass: ws[n] rescans the sheet each time
            if r in rows_with:
                ws.row_dimensions[r + 2].height = sheet.picture_px * 0.75 + 6  # points; pictures are in pixels
                for cell in cells:
                    cell.alignment = middle
        for (r, c), png in sorted(sheet.pictures.items()):
            picture = Picture(io.BytesIO(png))
            picture.width = picture.height = sheet.picture_px
            ws.add_image(picture, f"{get_column_letter(c + 1)}{r + 2}")
    ws.freeze_panes = "A2"
    book.save(path)
    return path
