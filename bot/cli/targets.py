"""`mianzi targets …`: targets per partner and period."""

from __future__ import annotations

from pathlib import Path

import typer

from bot import context
from bot.cli.common import SHEET_OPTION, _open, _report, guarded
from models.csvfile import open_table
from models.db import session_scope
from models.imports.records import rows_from_csv
from models.imports.targets import TARGET_COLUMNS, import_targets

targets_app = typer.Typer(no_args_is_help=True, help="Targets per partner and period.")


@targets_app.command("import")
def targets_import(file: Path, sheet: str | None = SHEET_OPTION) -> None:
    """Targets per partner per period from a CSV or .xlsx file."""
    with (guarded(), _open(file) as stream, open_table(stream, TARGET_COLUMNS, sheet) as csv_rows,
          session_scope(context.engine()) as session):
        report = import_targets(session, rows_from_csv(csv_rows.columns, csv_rows.rows, TARGET_COLUMNS))
    _report("targets", report, csv_rows)


