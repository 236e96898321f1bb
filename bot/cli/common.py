"""What every command group shares: the consoles, `fail`, `guarded`, JSON output, program time, import reports."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any, NoReturn

import typer
from rich.console import Console
from sqlalchemy.exc import SQLAlchemyError

from bot.settings import get_settings
from messages.render import local_time, t, zone_name
from models.csvfile import CsvRows
from models.errors import DataError
from models.imports.report import ImportRejected, ImportReport

METRIC_HELP = "revenue|units|orders|new_customers|margin|attainment|satisfaction"

out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)


def _locale() -> str:
    return get_settings().locale


def fail(key: str, **params: Any) -> NoReturn:
    """One line on stderr, exit 2: bad input, nothing changed."""
    err.print(t(key, _locale(), **params), markup=False, highlight=False)
    raise typer.Exit(2)


@contextmanager
def guarded() -> Iterator[None]:
    """Turn data errors into a one-line reason (and, for imports, one line per bad row)."""
    try:
        yield
    except ImportRejected as rejected:
        loc = _locale()
        err.print(t(rejected.key, loc, **rejected.params), markup=False, highlight=False)
        for line, errors in rejected.by_line():
            reasons = [t(e.key, loc, **e.params) for e in errors]
            err.print(t("row.line", loc, line=line, reasons=reasons), markup=False, highlight=False)
        raise typer.Exit(2) from None
    except DataError as exc:
        fail(exc.key, **exc.params)
    except SQLAlchemyError as exc:
        fail("error.database", detail=str(exc.orig if hasattr(exc, "orig") else exc).splitlines()[0])


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, ensure_ascii=False, default=str) + "\n")


def when(value: datetime | None) -> str:
    """A moment in program time for a table or a line (JSON keeps ISO 8601 UTC); label it with `time_column`."""
    return "-" if value is None else local_time(value, get_settings().timezone)


def time_column(name: str) -> str:
    """`name` labelled with the program's time zone: a table heading for `when` values
    (`created_at（北京时间）`), or a `when` value itself in a line."""
    return t("cli.time_column", _locale(), name=name, zone=zone_name(get_settings().timezone, _locale()))


# --- db ----------------------------------------------------------------------------------------

def _open(path: Path) -> Any:
    if not path.is_file():
        fail("error.file_not_found", value=str(path))
    return path.open("rb")


SHEET_OPTION = typer.Option(None, "--sheet", help="For an .xlsx file: the sheet to read (default: the first).")


_READ_AS = {"utf-8": "cli.read_utf8", "utf-8-sig": "cli.read_utf8_bom", "gb18030": "cli.read_gb18030",
            "xlsx": "cli.read_xlsx"}


def _report(what: str, report: ImportReport, source: CsvRows | None = None) -> None:
    out.print(t("cli.imported", _locale(), what=t(f"cli.what_{what}", _locale()), rows=report.rows,
                inserted=report.inserted, updated=report.updated, unchanged=report.unchanged), markup=False)
    if source is not None:
        _read_as(source)


def _read_as(source: CsvRows) -> None:
    """The import summary's second line: which encoding, or which sheet, the file was read as."""
    out.print(t(_READ_AS[source.source], _locale(), sheet=source.sheet), markup=False)


