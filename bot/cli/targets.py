"""`mianzi targets …`: targets per partner and period."""

from __future__ import annotations

from pathlib import Path

import typer

from bot.cli.common import SheetOption, _report, import_table

targets_app = typer.Typer(no_args_is_help=True, help="Targets per partner and period.")


@targets_app.command("import")
def targets_import(file: Path, sheet: SheetOption = None) -> None:
    """Targets per partner per period from a CSV or .xlsx file."""
    _report("targets", import_table("targets", file, sheet))


