"""`mianzi teams …`: the teams, their members and how many of them are bound."""

from __future__ import annotations

import typer

from bot.cli.common import JsonOption, _locale, guarded, out, print_json

teams_app = typer.Typer(no_args_is_help=True, help="Teams.")


@teams_app.command("list")
def teams_list(json_out: JsonOption = False) -> None:
    """Every team: active members, how many are bound to a chat account (and the share), the captains."""
    from rich.table import Table

    from bot import context
    from messages.render import t
    from models.db import session_scope
    from models.roster import teams

    loc = _locale()
    with guarded(), session_scope(context.engine()) as session:
        rows = teams(session)
    if json_out:
        print_json([r.doc() for r in rows])
        return
    if not rows:
        out.print(t("onboard.no_teams", loc), markup=False)
        return
    table = Table(*(t(f"onboard.col_{k}", loc) for k in ("team", "team_name", "members", "bound", "captain")))
    for r in rows:
        share = t("onboard.share", loc, bound=r.bound, pct=r.bound_pct) if r.members else "-"
        captains = "、".join(f"{n}（{c}）" for n, c in zip(r.captains, r.captain_codes, strict=True))
        table.add_row(r.code, r.name, str(r.members), share, captains or t("onboard.no_captain", loc))
    out.print(table)
