"""What every command group shares: the consoles, the options, `fail`, running a command's body
(`guarded`, `database`, `import_table`), JSON output, program time, import reports.

Light on purpose: `mianzi --help` imports this module and the group modules, so nothing here
imports settings (pydantic), the database (sqlalchemy, sqlmodel), `models`, `handlers` or the
message tables (jinja2) at the top; each helper imports what it needs when it runs.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer
from rich.console import Console

if TYPE_CHECKING:
    from sqlmodel import Session

    from bot.settings import Settings
    from models.imports.run import FileReport

METRIC_HELP = "revenue|units|orders|new_customers|margin|attainment|satisfaction"

JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON document.")]
"""`--json` on every command that has it: `json_out: JsonOption = False`."""

SheetOption = Annotated[str | None, typer.Option("--sheet", help="For an .xlsx file: the sheet to read "
                                                                 "(default: the first).")]

out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)


def _locale() -> str:
    from bot.settings import get_settings

    return get_settings().locale


def _t(key: str, **params: Any) -> str:
    from messages.render import t

    return t(key, _locale(), **params)


def fail(key: str, **params: Any) -> NoReturn:
    """One line on stderr, exit 2: bad input, nothing changed."""
    err.print(_t(key, **params), markup=False, highlight=False)
    raise typer.Exit(2)


def _raised(exc: BaseException, module: str, name: str) -> bool:
    """Whether `exc` is a `module.name`, without importing `module`: if it is not loaded, nothing raised one."""
    loaded = sys.modules.get(module)
    return loaded is not None and isinstance(exc, getattr(loaded, name))


@contextmanager
def guarded() -> Iterator[None]:
    """Run a command's body with its errors turned into one clear line on stderr, exit 2: a data
    error's reason (and, for a rejected import, one line per bad row), or the database's first line."""
    try:
        yield
    except Exception as exc:
        if not _raised(exc, "models.errors", "DataError"):
            if _raised(exc, "sqlalchemy.exc", "SQLAlchemyError"):
                fail("error.database", detail=str(exc.orig if hasattr(exc, "orig") else exc).splitlines()[0])
            if _raised(exc, "sqlite3", "Error") or _raised(exc, "psycopg", "Error"):  # a read through `models.plain`
                fail("error.database", detail=(str(exc).splitlines() or [type(exc).__name__])[0])
            raise
        if hasattr(exc, "by_line"):  # a rejected import (`ImportRejected`): its reason, then each bad row
            from messages.render import t

            loc = _locale()
            err.print(t(exc.key, loc, **exc.params), markup=False, highlight=False)  # type: ignore[attr-defined]
            for line, errors in exc.by_line():
                reasons = [t(e.key, loc, **e.params) for e in errors]
                err.print(t("row.line", loc, line=line, reasons=reasons), markup=False, highlight=False)
            raise typer.Exit(2) from None
        fail(exc.key, **exc.params)  # type: ignore[attr-defined]


@contextmanager
def database(settings: Settings | None = None) -> Iterator[Session]:
    """A command's body on the program's database: one transaction (committed at the end, rolled
    back on any error), its errors turned into one line by `guarded`."""
    from bot import context
    from models.db import session_scope

    with guarded(), session_scope(context.engine(settings)) as session:
        yield session


def import_table(kind: str, path: Path, sheet: str | None, settings: Settings | None = None,
                 progress: Callable[[int, int | None], None] | None = None) -> FileReport:
    """An import's file (CSV, its encoding found, or an .xlsx sheet) imported as `kind` in one
    transaction (`handlers.imports.import_file`); a missing file, a bad encoding, a missing column
    or a bad row is one line (a line per bad row), exit 2, nothing imported."""
    from bot.settings import get_settings
    from handlers.imports import import_file

    if not path.is_file():
        fail("error.file_not_found", value=str(path))
    settings = settings or get_settings()
    with guarded(), path.open("rb") as stream, database(settings) as session:
        return import_file(session, kind, stream, sheet=sheet, timezone=settings.timezone,
                           default_locale=settings.locale, progress=progress)


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, ensure_ascii=False, default=str) + "\n")


def json_or_empty(docs: Sequence[Any], json_out: bool, empty: str) -> bool:
    """A list command's two short answers: with `--json` the documents, else the `empty` line when
    there are none. True when that was the whole answer (the caller prints its table otherwise)."""
    if json_out:
        print_json(docs)
        return True
    if not docs:
        out.print(_t(empty), markup=False)
        return True
    return False


def when(value: datetime | None) -> str:
    """A moment in program time for a table or a line (JSON keeps ISO 8601 UTC); label it with `time_column`."""
    from bot.settings import get_settings
    from messages.render import local_time

    return "-" if value is None else local_time(value, get_settings().timezone)


def time_column(name: str) -> str:
    """`name` labelled with the program's time zone: a table heading for `when` values
    (`created_at（北京时间）`), or a `when` value itself in a line."""
    from bot.settings import get_settings
    from messages.render import zone_name

    return _t("cli.time_column", name=name, zone=zone_name(get_settings().timezone, _locale()))


_READ_AS = {"utf-8": "cli.read_utf8", "utf-8-sig": "cli.read_utf8_bom", "gb18030": "cli.read_gb18030",
            "xlsx": "cli.read_xlsx"}


def _report(what: str, report: FileReport) -> None:
    out.print(_t("cli.imported", what=_t(f"cli.what_{what}"), rows=report.rows, inserted=report.inserted,
                 updated=report.updated, unchanged=report.unchanged), markup=False)
    _read_as(report)


def _read_as(report: FileReport) -> None:
    """The import summary's second line: which encoding, or which sheet, the file was read as."""
    out.print(_t(_READ_AS[report.source], sheet=report.sheet), markup=False)
