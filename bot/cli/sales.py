"""`mianzi sales …`: the sales ledger."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from bot.cli.common import JsonOption, SheetOption, _locale, _report, database, err, import_table

sales_app = typer.Typer(no_args_is_help=True, help="The sales ledger.")


@sales_app.command("import")
def sales_import(file: Path, sheet: SheetOption = None) -> None:
    """Import sales (idempotent by id) from a CSV or .xlsx file, with a progress bar."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from messages.render import t

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=err, transient=True, disable=not err.is_terminal) as bar:
        task = bar.add_task(t("cli.importing", _locale()), total=None)
        report = import_table("sales", file, sheet,
                              progress=lambda done, total: bar.update(task, completed=done, total=total))
    _report("sales", report)


@sales_app.command("void")
def sales_void(sale_id: str = typer.Argument(..., metavar="ID", help="the sale's id (the sales file's id column)"),
               reason: str = typer.Option(..., "--reason", help="why: a return, a refund, a typo …"),
               json_out: JsonOption = False) -> None:
    """Cancel a sale with a correcting entry (its negatives); the sale itself is never changed."""
    from bot.cli.common import out, print_json
    from handlers.refresh import refresh_dirty
    from messages.render import money, t
    from models.corrections import void
    from models.values import utcnow

    with database() as session:
        reversal = void(session, sale_id, reason=reason, now=utcnow())
        refresh_dirty(session)
        doc: dict[str, Any] = {"id": reversal.ext_id, "reverses": sale_id, "amount_fen": reversal.amount_fen}
    if json_out:
        print_json(doc)
        return
    out.print(t("cli.sale_voided", _locale(), sale=sale_id, reversal=doc["id"],
                amount=money(-doc["amount_fen"], _locale())), markup=False)
