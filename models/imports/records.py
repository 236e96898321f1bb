"""Rows in: CSV rows (positional, kept as such for the bulk loader) and JSON records (the HTTP API)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from operator import itemgetter
from typing import Any

Row = tuple[int, dict[str, str]]
Progress = Callable[[int], None]


def rows_from_csv(columns: dict[str, int], rows: Iterable[tuple[int, list[str]]],
                  names: tuple[str, ...]) -> CsvRecords:
    """Turn positional CSV rows into dicts of the known columns (absent columns read as empty)."""
    return CsvRecords(columns, rows, names)


def _dicts_from_csv(columns: dict[str, int], rows: Iterable[tuple[int, list[str]]],
                    names: tuple[str, ...]) -> Iterator[Row]:
    index = [(name, columns.get(name)) for name in names]
    positions = [i for _name, i in index if i is not None]
    # The usual case (every column present, a full row) without a Python loop per value.
    whole = itemgetter(*positions) if len(positions) == len(names) > 1 else None
    width = max(positions, default=-1) + 1
    for line, values in rows:
        n = len(values)
        if whole is not None and n >= width:
            yield line, dict(zip(names, map(str.strip, whole(values)), strict=True))
        else:
            yield line, {name: (values[i].strip() if i is not None and i < n else "") for name, i in index}


def rows_from_records(records: Iterable[Any], names: tuple[str, ...]) -> Iterator[Row]:
    """JSON records (the HTTP API) numbered from 1; numbers become their text."""
    for number, record in enumerate(records, start=1):
        if not isinstance(record, dict):
            yield number, {"__invalid__": "not_an_object"}
            continue
        yield number, {name: _text(record.get(name)) for name in names}


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "__bool__"
    return str(value).strip()


class CsvRecords:
    """`rows_from_csv`'s rows: an iterator of (line, dict) that also keeps the positional rows, so
    that `import_sales` can take whole columns without building a dict per row."""

    def __init__(self, columns: dict[str, int], rows: Iterable[tuple[int, list[str]]], names: tuple[str, ...]):
        self.columns = columns
        self.raw = rows
        self.names = names
        self._dicts: Iterator[Row] | None = None

    def __iter__(self) -> CsvRecords:
        return self

    def __next__(self) -> Row:
        if self._dicts is None:
            self._dicts = _dicts_from_csv(self.columns, self.raw, self.names)
        return next(self._dicts)
