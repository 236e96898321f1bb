"""Reading the program's CSV files: UTF-8 with or without an Excel BOM, a header row."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from models.errors import DataError


@dataclass(frozen=True)
class CsvRows:
    """The header's column positions and an iterator of (line number, values)."""

    columns: dict[str, int]
    rows: Iterator[tuple[int, list[str]]]


@contextmanager
def open_csv(stream: BinaryIO, required: tuple[str, ...]) -> Iterator[CsvRows]:
    """Check the header and give the rows. Raises `DataError` for a missing column or bad encoding.

    The text layer is detached on exit, so the caller's binary stream stays the caller's to close.
    """
    text = io.TextIOWrapper(stream, encoding="utf-8-sig", errors="strict", newline="")
    try:
        yield _checked(text, stream, required)
    finally:
        text.detach()


def _checked(text: io.TextIOWrapper, stream: BinaryIO, required: tuple[str, ...]) -> CsvRows:
    reader = csv.reader(text)
    try:
        header = next(reader, None)
    except UnicodeDecodeError as exc:
        raise DataError("error.csv_encoding", line=_bad_line(stream)) from exc
    except csv.Error as exc:
        raise DataError("error.csv_malformed", line=1, detail=str(exc)) from exc
    if header is None:
        raise DataError("error.csv_empty")
    columns = {name.strip().lower(): i for i, name in enumerate(header)}
    missing = [name for name in required if name not in columns]
    if missing:
        raise DataError("error.csv_missing_columns", columns=", ".join(missing))
    return CsvRows(columns=columns, rows=_rows(reader, stream))


def _rows(reader: csv._reader, stream: BinaryIO) -> Iterator[tuple[int, list[str]]]:
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
    """The line number of the first byte that is not UTF-8 (re-reading the file's bytes)."""
    try:
        stream.seek(0)
        for number, raw in enumerate(stream, start=1):
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError:
                return number
    except (OSError, ValueError):
        pass
    return 0


def count_lines(path: Path) -> int:
    """Data rows in a file (lines after the header), for a progress bar's total."""
    n = 0
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            n += chunk.count(b"\n")
    return max(n - 1, 0)
