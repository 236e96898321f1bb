"""One import of a table file, whatever its kind: the CLI's `… import FILE` and the console's upload alike.

`run_import` opens the file (CSV in any encoding `models.csvfile` reads, or an `.xlsx` sheet),
runs the kind's import in the caller's transaction and says what it did and how the file was
read; a bad row raises `ImportRejected` (every bad row), a bad file `DataError`. Committing,
rolling back (a preview) and refreshing standings are the caller's (`handlers.imports`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import BinaryIO, Literal, get_args

from sqlmodel import Session

from models import rewards
from models.csvfile import CsvRows, count_data_lines, open_table
from models.errors import DataError
from models.imports.partners import PARTNER_COLUMNS, import_partners
from models.imports.records import rows_from_csv
from models.imports.report import ImportReport
from models.imports.sale_rows import SALE_REQUIRED, file_columns
from models.imports.sales import import_sales
from models.imports.targets import TARGET_COLUMNS, import_targets
from models.tallies import Sums
from models.values import utcnow, zone

Kind = Literal["partners", "targets", "sales", "catalog"]
KINDS: tuple[Kind, ...] = get_args(Kind)

FileProgress = Callable[[int, int | None], None]
"""Called with (rows done, rows in the file or None when unknown): once with 0 when the file is
open, then as the import goes (the sales import every chunk; the others once, at the end)."""

REQUIRED: dict[Kind, tuple[str, ...]] = {
    "partners": ("code", "name"),
    "targets": TARGET_COLUMNS,
    "sales": SALE_REQUIRED,
    "catalog": rewards.CATALOG_REQUIRED,
}


@dataclass(frozen=True)
class FileReport:
    """What an import did (`ImportReport`'s counts) and how its file was read: `source` is
    `utf-8`, `utf-8-sig` (with a BOM), `gb18030` or `xlsx`, `sheet` the sheet's name (xlsx only)."""

    kind: Kind
    rows: int
    inserted: int
    updated: int
    unchanged: int
    source: str
    sheet: str | None = None
    kept: dict[int, dict[int, Sums]] = field(default_factory=dict, compare=False, repr=False)
    """A sales import's kept sums (`ImportReport.kept`): for `handlers.imports`' refresh."""

    def doc(self) -> dict[str, object]:
        return {"kind": self.kind, "rows": self.rows, "inserted": self.inserted, "updated": self.updated,
                "unchanged": self.unchanged, "source": self.source, "sheet": self.sheet}


def check_kind(kind: str) -> Kind:
    """`kind` if it is one of `KINDS`, else `DataError("error.import_kind")`."""
    for known in KINDS:
        if kind == known:
            return known
    raise DataError("error.import_kind", value=kind, kinds=", ".join(KINDS))


def run_import(session: Session, kind: str, stream: BinaryIO, *, sheet: str | None = None,
               timezone: str, default_locale: str, progress: FileProgress | None = None,
               now: datetime | None = None, keep: bool = True) -> FileReport:
    """Import `stream` (a binary file: CSV or `.xlsx`; `sheet` names an .xlsx sheet, default the
    first visible one) as `kind` in the session's transaction, without committing.

    `timezone` is the program's (a sale's time without an offset is read in it), `default_locale`
    a new partner's language when the file gives none. Raises `ImportRejected` with every bad row,
    `DataError` for a bad file (encoding, missing column, unreadable workbook, unknown sheet).
    `keep`: a sales import keeps the open contests' sums for the standings refresh that follows
    (`models.tallies`; not worth its reads for a preview, rolled back).
    """
    which = check_kind(kind)
    lines: int | None = None
    if progress is not None and stream.seekable() and not _is_zip(stream):
        lines = count_data_lines(stream)
    with open_table(stream, REQUIRED[which], sheet) as table:
        total = table.data_rows if table.data_rows is not None else lines
        if progress is not None:
            progress(0, total)
        report = _import(session, which, table, timezone, default_locale, now or utcnow(),
                         None if progress is None else (lambda n: progress(n, total)), keep)
        if progress is not None and which != "sales":
            progress(report.rows, total)
    return FileReport(kind=which, rows=report.rows, inserted=report.inserted, updated=report.updated,
                      unchanged=report.unchanged, source=table.source, sheet=table.sheet, kept=report.kept)


def _is_zip(stream: BinaryIO) -> bool:
    head = stream.read(4)
    stream.seek(0)
    return head == b"PK\x03\x04"


def _import(session: Session, kind: Kind, table: CsvRows, timezone: str, default_locale: str, now: datetime,
            progress: Callable[[int], None] | None, keep: bool) -> ImportReport:
    if kind == "partners":
        return import_partners(session, rows_from_csv(table.columns, table.rows, PARTNER_COLUMNS),
                               default_locale=default_locale)
    if kind == "targets":
        return import_targets(session, rows_from_csv(table.columns, table.rows, TARGET_COLUMNS))
    if kind == "sales":
        return import_sales(session, rows_from_csv(table.columns, table.rows, file_columns(table.columns)),
                            zone(timezone), progress=progress, now=now, keep=keep)
    return rewards.import_catalog(session, rows_from_csv(table.columns, table.rows, rewards.CATALOG_COLUMNS), now)
