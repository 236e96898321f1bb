"""Reading the program's CSV files: UTF-8 with or without an Excel BOM, a header row."""

from __future__ import annotations

import csv
import io
import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import chain, islice
from operator import methodcaller
from pathlib import Path
from typing import BinaryIO

from models.errors import DataError


@dataclass(frozen=True)
class CsvRows:
    """The header's column positions and an iterator of (line number, values)."""

    columns: dict[str, int]
    rows: CsvLines


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
    return CsvRows(columns=columns, rows=CsvLines(reader, text, stream))


_STRIP_NEWLINE = methodcaller("rstrip", "\r\n")
_SPLIT_COMMAS = methodcaller("split", ",")


class CsvLines:
    """The data rows as (line number, values), blank lines skipped.

    Iterate it for one row at a time, or call `batch` for many at once (the sales import), not both:
    `batch` splits lines on commas itself until it meets the first quote, then hands the rest of
    the file to a `csv.reader`.
    """

    def __init__(self, reader: csv._reader, text: io.TextIOWrapper, stream: BinaryIO) -> None:
        self._reader = reader
        self._text = text
        self._stream = stream
        self._rows: Iterator[tuple[int, list[str]]] | None = None
        self._line = reader.line_num  # the last line read
        self._quoted: csv._reader | None = None

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
        numbered = [(line + reader.line_num, values) for values in islice(reader, size)]  # type: ignore[union-attr]
        return [number for number, _values in numbered], [values for _number, values in numbered]


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
