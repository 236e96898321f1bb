"""`mianzi rewards …`: the rewards catalog (积分商城)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from bot import context
from bot.cli.common import SHEET_OPTION, _locale, _open, _read_as, guarded, out, print_json
from messages.render import number, t
from models.csvfile import open_table
from models.db import session_scope
from models.imports.records import rows_from_csv
from models.values import utcnow

rewards_app = typer.Typer(no_args_is_help=True, help="The rewards catalog (积分商城).")


@rewards_app.command("import")
def rewards_import(file: Path, sheet: str | None = SHEET_OPTION) -> None:
    """Add or update catalog items from a CSV or .xlsx file (sku,name_zh,name_en,points,stock,active)."""
    from models import rewards as store

    with (guarded(), _open(file) as stream, open_table(stream, store.CATALOG_REQUIRED, sheet) as csv_rows,
          session_scope(context.engine()) as session):
        report = store.import_catalog(session, rows_from_csv(csv_rows.columns, csv_rows.rows, store.CATALOG_COLUMNS),
                                      utcnow())
    loc = _locale()
    out.print(t("cli.imported", loc, what=t("rewards.what_catalog", loc), rows=report.rows, inserted=report.inserted,
                updated=report.updated, unchanged=report.unchanged), markup=False)
    _read_as(csv_rows)


@rewards_app.command("list")
def rewards_list(json_out: bool = typer.Option(False, "--json")) -> None:
    """Every catalog item with its points, stock and pending requests."""
    from sqlalchemy import func, select

    from models import rewards as store
    from models.tables import Redemption

    loc = _locale()
    with guarded(), session_scope(context.engine()) as session:
        items = store.items(session, active_only=False)
        pending = dict(session.execute(select(Redemption.item_id, func.count()).where(Redemption.status == "pending")
                                       .group_by(Redemption.item_id)).all())
    docs = [{"sku": i.sku, "name_zh": i.name_zh, "name_en": i.name_en, "points": i.points, "stock": i.stock,
             "active": i.active, "pending": int(pending.get(i.id, 0))} for i in items]
    if json_out:
        print_json(docs)
        return
    if not docs:
        out.print(t("rewards.empty", loc), markup=False)
        return
    table = Table("sku", "name_zh", "name_en", "points", "stock", "active", "pending")
    for d in docs:
        table.add_row(*(number(d[k]) if k == "points" else str(d[k])
                        for k in ("sku", "name_zh", "name_en", "points", "stock", "active", "pending")))
    out.print(table)


