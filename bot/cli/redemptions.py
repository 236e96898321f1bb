"""`mianzi redemptions …`: redemption requests: list, approve, reject."""

from __future__ import annotations

from typing import Any

import typer

from bot.cli.common import JsonOption, _locale, database, fail, json_or_empty, out, print_json, time_column, when

redemptions_app = typer.Typer(no_args_is_help=True, help="Redemption requests: list, approve, reject.")


def _redemption_json(r: Any, item: Any, partner: Any) -> dict[str, Any]:
    return {"id": r.id, "partner": partner.code, "partner_name": partner.name, "sku": item.sku,
            "item": item.name_zh, "item_en": item.name_en, "points": r.points, "status": r.status,
            "created_at": r.created_at.isoformat(), "decided_at": r.decided_at.isoformat() if r.decided_at else None,
            "note": r.note}


@redemptions_app.command("list")
def redemptions_list(status: str | None = typer.Option(None, "--status", help="pending|approved|rejected"),
                     json_out: JsonOption = False) -> None:
    """Redemption requests, oldest first."""
    from rich.table import Table

    from messages.render import number, t
    from models import rewards as store
    from models.tables import REDEMPTION_STATUSES

    loc = _locale()
    if status is not None and status not in REDEMPTION_STATUSES:
        fail("rewards.bad_status", value=status, choices=", ".join(REDEMPTION_STATUSES))
    with database() as session:
        rows = list(store.redemptions(session, status=status))
        docs = [_redemption_json(r, i, p) for r, i, p in rows]
    if json_or_empty(docs, json_out, "rewards.no_redemptions"):
        return
    table = Table("id", "partner", "sku", "points", "status", time_column("created_at"), "note")
    for d, (r, _i, _p) in zip(docs, rows, strict=True):
        table.add_row(str(d["id"]), f"{d['partner']} {d['partner_name']}", d["sku"], number(d["points"]),
                      t(f"redemption.{d['status']}", loc), when(r.created_at), d["note"] or "")
    out.print(table)


@redemptions_app.command("approve")
def redemptions_approve(redemption_id: int = typer.Argument(..., metavar="ID"),
                        json_out: JsonOption = False) -> None:
    """Approve a pending redemption; the partner is told through the outbox."""
    _decide_redemption(redemption_id, True, None, json_out)


@redemptions_app.command("reject")
def redemptions_reject(redemption_id: int = typer.Argument(..., metavar="ID"),
                       reason: str | None = typer.Option(None, "--reason", help="told to the partner"),
                       json_out: JsonOption = False) -> None:
    """Reject a pending redemption: points and stock are given back, the partner is told."""
    _decide_redemption(redemption_id, False, reason, json_out)


def _decide_redemption(redemption_id: int, approve: bool, reason: str | None, json_out: bool) -> None:
    from handlers.rewards import decide
    from messages.render import t
    from models.values import utcnow

    loc = _locale()
    now = utcnow()
    with database() as session:
        decision = decide(session, redemption_id, approve=approve, by=None, note=reason, now=now)
        doc = _redemption_json(decision.redemption, decision.item, decision.partner)
    if json_out:
        print_json(doc)
        return
    out.print(t("rewards.cli_approved" if approve else "rewards.cli_rejected", loc, id=redemption_id), markup=False)


