"""`mianzi rewards …`: the rewards catalog (积分商城)."""

from __future__ import annotations

from pathlib import Path

import typer

from bot.cli.common import JsonOption, SheetOption, _locale, _read_as, database, import_table, json_or_empty, out

rewards_app = typer.Typer(no_args_is_help=True, help="The rewards catalog (积分商城).")


@rewards_app.command("import")
def rewards_import(file: Path, sheet: SheetOption = None) -> None:
    """Add or update catalog items from a CSV or .xlsx file (sku,name_zh,name_en,points,stock,active)."""
    from messages.render import t

    report = import_table("catalog", file, sheet)
    loc = _locale()
    out.print(t("cli.imported", loc, what=t("rewards.what_catalog", loc), rows=report.rows, inserted=report.inserted,
                updated=report.updated, unchanged=report.unchanged), markup=False)
    _read_as(report)


@rewards_app.command("list")
def rewards_list(json_out: JsonOption = False) -> None:
    """Every catalog item with its points, stock and pending requests."""
    from rich.table import Table

    from messages.render import number
    from models import rewards as store

    with database() as session:
        items = store.items(session, active_only=False)
        pending = store.pending_by_item(session=session)
    docs = [{"sku": i.sku, "name_zh": i.name_zh, "name_en": i.name_en, "points": i.points, "stock": i.stock,
             "active": i.active, "pending": int(pending.get(i.id, 0))} for i in items]
    if json_or_empty(docs, json_out, "rewards.empty"):
        return
    table = Table("sku", "name_zh", "name_en", "points", "stock", "active", "pending")
    for d in docs:
        table.add_row(*(number(d[k]) if k == "points" else str(d[k])
                        for k in ("sku", "name_zh", "name_en", "points", "stock", "active", "pending")))
    out.print(table)


