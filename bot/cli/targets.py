"""`mianzi targets …`: targets per partner and period."""

from __future__ import annotations

from pathlib import Path

import typer

from bot.cli.common import SheetOption, _report, database, table_file

targets_app = typer.Typer(no_args_is_help=True, help="Targets per partner and period.")


@targets_app.command("import")
def targets_import(file: Path, sheet: SheetOption = None) -> None:
    """Targets per partner per period from a CSV or .xlsx file."""
    from models.imports.records import rows_from_csv
    from models.imports.targets import TARGET_COLUMNS, import_targets

    with table_file(file, TARGET_COLUMNS, sheet) as csv_rows, database() as session:
        report = import_targets(session, rows_from_csv(csv_rows.columns, csv_rows.rows, TARGET_COLUMNS))
    _report("targets", report, csv_rows)


