"""`mianzi sales …`: the sales ledger."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from bot import context
from bot.cli.common import SHEET_OPTION, _locale, _open, _report, err, guarded
from bot.settings import get_settings
from handlers.refresh import refresh_dirty
from messages.render import money, t
from models.csvfile import count_lines, open_table
from models.db import session_scope
from models.imports import SALE_COLUMNS, SALE_REQUIRED, import_sales, rows_from_csv
from models.values import zone

sales_app = typer.Typer(no_args_is_help=True, help="The sales ledger.")


@sales_app.command("import")
def sales_import(file: Path, sheet: str | None = SHEET_OPTION) -> None:
    """Import sales (idempotent by id) from a CSV or .xlsx file, with a progress bar."""
    settings = get_settings()
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with guarded(), _open(file) as stream, Progress(*columns, console=err, transient=True,
                                                   disable=not err.is_terminal) as bar:
        task = bar.add_task(t("cli.importing", _locale()), total=None)
        with open_table(stream, SALE_REQUIRED, sheet) as csv_rows, session_scope(context.engine(settings)) as session:
            total = csv_rows.data_rows if csv_rows.data_rows is not None else count_lines(file)
            bar.update(task, total=total)
            report = import_sales(session, rows_from_csv(csv_rows.columns, csv_rows.rows, SALE_COLUMNS),
                                  zone(settings.timezone), progress=lambda n: bar.update(task, completed=n))
            refresh_dirty(session)
    _report("sales", report, csv_rows)




@sales_app.command("void")
def sales_void(sale_id: str = typer.Argument(..., metavar="ID", help="the sale's id (the sales file's id column)"),
               reason: str = typer.Option(..., "--reason", help="why: a return, a refund, a typo …"),
               json_out: bool = typer.Option(False, "--json")) -> None:
    """Cancel a sale with a correcting entry (its negatives); the sale itself is never changed."""
    from bot.cli.common import out, print_json
    from models.corrections import void
    from models.values import utcnow

    with guarded(), session_scope(context.engine()) as session:
        reversal = void(session, sale_id, reason=reason, now=utcnow())
        refresh_dirty(session)
        doc = {"id": reversal.ext_id, "reverses": sale_id, "amount_fen": reversal.amount_fen}
    if json_out:
        print_json(doc)
        return
    out.print(t("cli.sale_voided", _locale(), sale=sale_id, reversal=doc["id"],
                amount=money(-doc["amount_fen"], _locale())), markup=False)
