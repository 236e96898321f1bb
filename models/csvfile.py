"""Reading the program's files: a header row and data rows, from a CSV file or an Excel sheet.

A CSV file is read as UTF-8 when it starts with a BOM (Excel's "CSV UTF-8") or is valid UTF-8 all
through, else as GB18030 (a superset of GBK: Excel's plain "CSV" on Chinese Windows, and WPS), else
refused. No detector library: they take GBK for other code pages. An `.xlsx` workbook (known by its
content, not its name) is read with python-calamine, its typed cells turned into the text a CSV
file would hold, its rows numbered as the sheet numbers them.
"""

from __future__ import annotations

import _csv
import codecs
import csv
import io
import os
import stat
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from itertools import chain, islice, repeat
from operator import methodcaller
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, cast

from models.errors import DataError

if TYPE_CHECKING:
    from python_calamine import CalamineWorkbook


@dataclass(frozen=True)
class CsvRows:
    """The header's column positions and an iterator of (line number, values).

    `source` says how the file was read (`utf-8`, `utf-8-sig`: with a BOM, `gb18030`, `xlsx`),
    `sheet` which sheet, `data_rows` how many rows a sheet has after its header (None for CSV)."""

    columns: dict[str, int]
    rows: CsvLines | SheetLines
    source: str = "utf-8"
    sheet: str | None = None
    data_rows: int | None = None


_ZIP = b"PK\x03\x04"  # an .xlsx workbook is a ZIP archive
_OLE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # an old .xls workbook
_BOM = codecs.BOM_UTF8
_SCAN = 1 << 20


@contextmanager
def open_table(stream: BinaryIO, required: tuple[str, ...], sheet: str | None = None) -> Iterator[CsvRows]:
    """`open_csv` for a CSV file, or the first visible sheet (or the one named `sheet`) of an
    `.xlsx` workbook. Raises `DataError` for a missing column, an unreadable file, a missing sheet."""
    if not stream.seekable():
        stream = io.BytesIO(stream.read())
    head = stream.read(len(_OLE))
    stream.seek(0)
    if head.startswith(_ZIP):
        yield _open_sheet(stream, required, sheet)
        return
    if head == _OLE:
        raise DataError("error.xls_old")
    if sheet is not None:
        raise DataError("error.sheet_not_xlsx")
    with open_csv(stream, required) as rows:
        yield rows


@contextmanager
def open_csv(stream: BinaryIO, required: tuple[str, ...]) -> Iterator[CsvRows]:
    """Check the header and give the rows. Raises `DataError` for a missing column or bad encoding.

    The encoding is decided first, from the whole file (one pass over its bytes; an ASCII block is
    skipped without decoding); the text layer's incremental decoder then reads GB18030 as safely as
    UTF-8 at any chunk boundary. The text layer is detached on exit, so the caller's binary stream
    stays the caller's to close. `stream` must be seekable.
    """
    encoding = _encoding(stream)
    text = io.TextIOWrapper(stream, encoding=encoding, errors="strict", newline="")
    try:
        yield _checked(text, stream, required, encoding)
    finally:
        text.detach()


def _encoding(stream: BinaryIO) -> str:
    """`utf-8-sig` for a BOM, else `utf-8` if every byte decodes, else `gb18030` if every byte
    does; else `DataError` with the first line that is neither. Leaves the stream at its start."""
    try:
        if stream.read(len(_BOM)) == _BOM:
            return "utf-8-sig"
        for encoding in ("utf-8", "gb18030"):
            stream.seek(0)
            if _decodes(stream, encoding):
                return encoding
        raise DataError("error.csv_encoding", line=_bad_line(stream))
    finally:
        stream.seek(0)


def _decodes(stream: BinaryIO, encoding: str) -> bool:
    decoder = codecs.getincrementaldecoder(encoding)("strict")
    try:
        while block := stream.read(_SCAN):
            if block.isascii() and not decoder.getstate()[0]:
                continue  # ASCII is the same in both, and nothing is pending
            decoder.decode(block)
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    return True


def _checked(text: io.TextIOWrapper, stream: BinaryIO, required: tuple[str, ...], encoding: str) -> CsvRows:
    reader = csv.reader(text)
    try:
        header = next(reader, None)
    except UnicodeDecodeError as exc:
        raise DataError("error.csv_encoding", line=_bad_line(stream)) from exc
    except csv.Error as exc:
        raise DataError("error.csv_malformed", line=1, detail=str(exc)) from exc
    if header is None:
        raise DataError("error.csv_empty")
    columns = _header(header, required)
    return CsvRows(columns=columns, rows=CsvLines(reader, text, stream), source=encoding)


def _header(header: list[str], required: tuple[str, ...]) -> dict[str, int]:
    columns = {name.strip().lower(): i for i, name in enumerate(header)}
    missing = [name for name in required if name not in columns]
    if missing:
        raise DataError("error.csv_missing_columns", columns=", ".join(missing))
    return columns


_STRIP_NEWLINE = methodcaller("rstrip", "\r\n")
_SPLIT_COMMAS = methodcaller("split", ",")


class CsvLines:
    """The data rows as (line number, values), blank lines skipped.

    Iterate it for one row at a time, or call `batch` for many at once (the sales import), not both:
    `batch` splits lines on commas itself until it meets the first quote, then hands the rest of
    the file to a `csv.reader`.
    """

    def __init__(self, reader: _csv.Reader, text: io.TextIOWrapper, stream: BinaryIO) -> None:
        self._reader = reader
        self._text = text
        self._stream = stream
        self._rows: Iterator[tuple[int, list[str]]] | None = None
        self._line = reader.line_num  # the last line read
        self._quoted: _csv.Reader | None = None

    def __iter__(self) -> CsvLines:
        return self

    def __next__(self) -> tuple[int, list[str]]:
        if self._rows is None:
            self._rows = _rows(self._reader, self._stream)
        return next(self._rows)

    def batch(self, size: int) -> tuple[list[int], list[list[str]]]:
        """Up to `size` rows read at once, as their line numbers and their values (fewer at the end
        of the file, none after it)."""
        try:
            while True:
                numbers, rows = self._from_quoted(size) if self._quoted is not None else self._split(size)
                if not rows:
                    return [], []
                if min(map(len, rows)) > 1:
                    return numbers, rows  # no blank line
                kept = [i for i, values in enumerate(rows) if len(values) > 1 or (values and values[0].strip())]
                if kept:
                    return [numbers[i] for i in kept], [rows[i] for i in kept]
        except UnicodeDecodeError as exc:
            raise DataError("error.csv_encoding", line=_bad_line(self._stream)) from exc
        except csv.Error as exc:
            line = self._line + (self._quoted.line_num if self._quoted is not None else 0)
            raise DataError("error.csv_malformed", line=line, detail=str(exc)) from exc

    def share_read(self) -> float | None:
        """The share of the file's bytes read so far (a few KiB of read-ahead included), or None
        when the stream is not a regular file: to estimate how many rows are left."""
        try:
            info = os.fstat(self._stream.fileno())
            if not stat.S_ISREG(info.st_mode) or not info.st_size:
                return None
            return min(1.0, self._stream.tell() / info.st_size)
        except (OSError, ValueError, AttributeError):
            return None

    def _split(self, size: int) -> tuple[list[int], list[list[str]]]:
        lines = list(islice(self._text, size))
        block = "".join(lines)  # one search for quotes and NULs instead of one per line
        if '"' in block or "\0" in block:
            self._quoted = csv.reader(chain(lines, self._text))
            return self._from_quoted(size)
        first = self._line + 1
        self._line += len(lines)
        return list(range(first, self._line + 1)), list(map(_SPLIT_COMMAS, map(_STRIP_NEWLINE, lines)))

    def _from_quoted(self, size: int) -> tuple[list[int], list[list[str]]]:
        reader, line = self._quoted, self._line
        assert reader is not None  # batch() set it before handing over
        numbered = [(line + reader.line_num, values) for values in islice(reader, size)]
        return [number for number, _values in numbered], [values for _number, values in numbered]


def _rows(reader: _csv.Reader, stream: BinaryIO) -> Iterator[tuple[int, list[str]]]:
    try:
        for values in reader:
            if not values or (len(values) == 1 and not values[0].strip()):
                continue
            yield reader.line_num, values
    except UnicodeDecodeError as exc:
        raise DataError("error.csv_encoding", line=_bad_line(stream)) from exc
    except csv.Error as exc:
        raise DataError("error.csv_malformed", line=reader.line_num, detail=str(exc)) from exc


def _bad_line(stream: BinaryIO) -> int:
    """The number of the first line that is neither UTF-8 nor GB18030, or else (a file mixing the
    two) of the first that is not UTF-8, re-reading the file's bytes. A line break is never part
    of a character in either, so the lines can be split on bytes."""
    first = 0
    try:
        stream.seek(0)
        for number, raw in enumerate(stream, start=1):
            if _fails(raw, "utf-8"):
                if _fails(raw, "gb18030"):
                    return number
                first = first or number
    except (OSError, ValueError):
        pass
    return first


def _fails(raw: bytes, encoding: str) -> bool:
    try:
        raw.decode(encoding)
    except UnicodeDecodeError:
        return True
    return False


# --- Excel ---------------------------------------------------------------------------------------


def _open_sheet(stream: BinaryIO, required: tuple[str, ...], name: str | None) -> CsvRows:
    from python_calamine import CalamineError, CalamineWorkbook, WorksheetNotFound  # only for a workbook

    try:
        book = CalamineWorkbook.from_filelike(stream)
    except (CalamineError, ValueError, OSError) as exc:
        raise DataError("error.xlsx_unreadable", detail=str(exc)[:200]) from exc
    try:
        sheet = book.get_sheet_by_name(_first_sheet(book) if name is None else name)
    except WorksheetNotFound as exc:
        raise DataError("error.xlsx_no_sheet", value=name, sheets="、".join(book.sheet_names)) from exc
    except (CalamineError, ValueError) as exc:
        raise DataError("error.xlsx_unreadable", detail=str(exc)[:200]) from exc
    start = sheet.start
    if start is None or not sheet.height:
        raise DataError("error.csv_empty")
    rows = sheet.iter_rows()
    # The header is the first row with a value, on the sheet's row `start[0] + 1`; python-calamine
    # (0.9) yields the empty rows above it too (its issue #177), a later version may not.
    header: list[str] = next(filter(any, map(_cells, rows)), [])
    columns = _header(header, required)
    data_rows = sheet.height - 1
    return CsvRows(columns=columns, rows=SheetLines(rows, start[0] + 1, data_rows), source="xlsx", sheet=sheet.name,
                   data_rows=data_rows)


def _first_sheet(book: CalamineWorkbook) -> str:
    """The first visible worksheet's name (what Excel opens on), else the first sheet's."""
    for meta in book.sheets_metadata:
        if str(meta.typ).endswith("WorkSheet") and str(meta.visible).endswith(".Visible"):
            return meta.name
    return book.sheet_names[0]


def _cells(row: Sequence[object]) -> list[str]:
    """A sheet row as the text a CSV file would hold (text cells, the usual kind, as they are)."""
    return [value if type(value) is str else _cell_text(value) for value in row]


def _cell_text(value: object) -> str:
    """One typed cell as text: a number to Excel's own 15 significant digits, so a whole one without
    `.0` (a code 1001, units 3) and 12000.5 not 12000.499999999998, never in exponent form; a date
    as `YYYY-MM-DD`, a date and time as `YYYY-MM-DD HH:MM:SS` (no offset: read in the program time
    zone, as in a CSV file); a boolean as `true`/`false`."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return _plain(format(value, ".15g"))
    if isinstance(value, int):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat(" ")
    if isinstance(value, date):
        return value.isoformat()
    if value is None:
        return ""
    return str(value)


def _plain(text: str) -> str:
    """A number's text without an exponent (`1e+15` is `1000000000000000`)."""
    return format(Decimal(text), "f") if "e" in text else text


def _column_texts(values: tuple[object, ...]) -> list[str] | tuple[object, ...]:
    """`_cell_text` over a column of a batch, the usual kinds at C speed. In a column that holds
    dates and times, a date (python-calamine's value for a time of exactly midnight) gets its
    `00:00:00`, so that the column keeps one shape (the sales import's fast path)."""
    kinds = set(map(type, values))
    if kinds == {str}:
        return values
    if kinds <= {float, str}:
        texts = (list(map(format, values, repeat(".15g"))) if str not in kinds
                 else [v if type(v) is str else format(v, ".15g") for v in values])
        return list(map(_plain, texts)) if "e" in "".join(texts) else texts
    if kinds <= {datetime, date, str} and datetime in kinds:
        return [v if type(v) is str else v.isoformat(" ") if type(v) is datetime
                else f"{cast(date, v).isoformat()} 00:00:00" for v in values]
    return [v if type(v) is str else _cell_text(v) for v in values]


class SheetLines:
    """`CsvLines` for an Excel sheet: (line number, values) as the sheet numbers its rows, blank rows
    skipped; `batch` for many at once, converted a column at a time. The sheet is in memory
    (python-calamine's), its rows made Python values as they are read."""

    def __init__(self, rows: Iterator[Sequence[object]], header_line: int, total: int) -> None:
        self._rows = rows
        self._line = header_line  # the last line read
        self._first = header_line
        self._total = total

    def __iter__(self) -> SheetLines:
        return self

    def __next__(self) -> tuple[int, list[str]]:
        while True:
            row = next(self._rows)
            self._line += 1
            if row.count("") != len(row):
                return self._line, _cells(row)

    def batch(self, size: int) -> tuple[list[int], list[list[str]]]:
        """Up to `size` rows, as their line numbers and their values (none after the last)."""
        first = self._line + 1
        raw = list(islice(self._rows, size))
        self._line += len(raw)
        numbered = [(line, row) for line, row in enumerate(raw, start=first) if row.count("") != len(row)]
        if not numbered:
            return ([], []) if not raw else self.batch(size)
        lines = [line for line, _row in numbered]
        columns = [_column_texts(column) for column in zip(*(row for _line, row in numbered), strict=True)]
        return lines, list(map(list, zip(*columns, strict=True)))

    def share_read(self) -> float | None:
        """The share of the sheet's rows read so far."""
        return min(1.0, (self._line - self._first) / self._total) if self._total else None


def count_lines(path: Path) -> int:
    """Data rows in a file (lines after the header), for a progress bar's total."""
    with path.open("rb") as f:
        return count_data_lines(f)


def count_data_lines(stream: BinaryIO) -> int:
    """`count_lines` of a seekable binary stream (a CSV file's bytes), read from its start and left
    there: its lines but the header's, the last one counted with or without its line break (an
    estimate when a value holds a line break or a line is blank)."""
    n = 0
    last = b"\n"
    stream.seek(0)
    try:
        while chunk := stream.read(1 << 20):
            n += chunk.count(b"\n")
            last = chunk[-1:]
    finally:
        stream.seek(0)
    if last != b"\n":
        n += 1  # the last line has no line break
    return max(n - 1, 0)
