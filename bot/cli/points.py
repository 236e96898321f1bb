"""`mianzi points …`: the points ledger: balances and adjustments."""

from __future__ import annotations

from typing import Any

import typer

from bot.cli.common import JsonOption, _locale, database, out, print_json, time_column, when

points_app = typer.Typer(no_args_is_help=True, help="The points ledger: balances and adjustments.")


@points_app.command("adjust", context_settings={"ignore_unknown_options": True})
def points_adjust(partner: str = typer.Argument(..., metavar="PARTNER"),
                  amount: str = typer.Argument(..., metavar="AMOUNT", help="+100 or -50"),
                  reason: str = typer.Option(..., "--reason", help="why; shown to the partner"),
                  json_out: JsonOption = False) -> None:
    """Add or take away points with a reason (never below zero); the partner is told."""
    from handlers.points import adjust
    from messages.render import t
    from models import contests as contest_ops
    from models import points
    from models.values import utcnow

    loc = _locale()
    now = utcnow()
    with database() as session:
        who = contest_ops.partner_by_code(session, partner)
        entry, balance = adjust(session, who.id, points.parse_amount(amount), reason, by=None, now=now)
    if json_out:
        print_json({"partner": partner, "amount": entry.amount, "balance": balance, "entry": entry.id})
        return
    out.print(t("ledger.cli_adjusted", loc, code=partner, amount=entry.amount, balance=balance), markup=False)


@points_app.command("show")
def points_show(partner: str = typer.Argument(..., metavar="PARTNER"),
                limit: int = typer.Option(20, "--limit", help="entries shown, newest first"),
                json_out: JsonOption = False) -> None:
    """A partner's balance and latest ledger entries."""
    from rich.table import Table

    from messages.render import signed, t
    from models import contests as contest_ops
    from models import points

    loc = _locale()
    with database() as session:
        who = contest_ops.partner_by_code(session, partner)
        balance = points.balance(session, who.id)
        rows = points.entries(session, who.id, limit)
    docs: list[dict[str, Any]]
    docs = [{"id": e.id, "kind": e.kind, "amount": e.amount, "reason": e.reason, "source_key": e.source_key,
             "created_at": e.created_at.isoformat()} for e in rows]
    if json_out:
        print_json({"partner": partner, "balance": balance, "entries": docs})
        return
    out.print(t("ledger.cli_balance", loc, name=who.name, code=who.code, balance=balance), markup=False)
    if not docs:
        out.print(t("ledger.no_entries", loc), markup=False)
        return
    table = Table(time_column("created_at"), "kind", "amount", "reason")
    for d, e in zip(docs, rows, strict=True):
        code = d["reason"].get("code")
        label = t(code, loc) if code else ""
        note = d["reason"].get("note")
        table.add_row(when(e.created_at), d["kind"], signed(d["amount"]), f"{label} {note}" if note else label)
    out.print(table)


