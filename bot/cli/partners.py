"""`mianzi partners …`: partners and teams."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import typer

from bot.cli.common import JsonOption, SheetOption, _locale, _report, database, out, print_json, table_file

partners_app = typer.Typer(no_args_is_help=True, help="Partners and teams.")


@partners_app.command("import")
def partners_import(file: Path, sheet: SheetOption = None) -> None:
    """Add or update partners and teams from a CSV or .xlsx file."""
    from bot.settings import get_settings
    from models.imports import PARTNER_COLUMNS, import_partners, rows_from_csv

    settings = get_settings()
    with table_file(file, ("code", "name"), sheet) as csv_rows, database(settings) as session:
        report = import_partners(session, rows_from_csv(csv_rows.columns, csv_rows.rows, PARTNER_COLUMNS),
                                 default_locale=settings.locale)
    _report("partners", report, csv_rows)


@partners_app.command("invite")
def partners_invite(code: str, json_out: JsonOption = False) -> None:
    """Print a fresh one-time invite code for a partner, and the Telegram deep link."""
    from bot.settings import get_settings
    from messages.render import t
    from models import contests as contest_ops
    from models.identities import new_invite

    settings = get_settings()
    with database(settings) as session:
        partner = contest_ops.partner_by_code(session, code)
        invite = new_invite(session, partner, settings.invite_ttl_days)
    link = f"https://t.me/{settings.telegram_bot_username}?start={invite.code}"
    if json_out:
        print_json({"partner": code, "invite": invite.code, "telegram_link": link,
                    "expires_at": invite.expires_at.isoformat()})
        return
    out.print(t("cli.invite", _locale(), partner=code, code=invite.code, days=settings.invite_ttl_days), markup=False)
    out.print(t("cli.invite_link", _locale(), link=link), markup=False)


def _account_doc(account: Any, tz: Any) -> dict[str, Any]:
    """A chat account for `partners show` / `unbind`: times in program time, with the zone's name."""

    def when(value: datetime | None) -> str | None:
        return value.astimezone(tz).isoformat(timespec="minutes") if value else None

    return {"platform": account.platform, "user_ref": account.user_ref, "active": account.active,
            "bound_at": when(account.bound_at), "last_seen_at": when(account.last_seen_at)}


def _short(iso: str | None) -> str | None:
    """`2026-12-01T10:00+08:00` as `2026-12-01 10:00` (the zone is named once on the line)."""
    return iso[:16].replace("T", " ") if iso else None


@partners_app.command("show")
def partners_show(code: str, json_out: JsonOption = False) -> None:
    """A partner and the chat accounts bound to them."""
    from bot.settings import get_settings
    from messages.render import t
    from models import contests as contest_ops
    from models.identities import accounts_of
    from models.tables import Team
    from models.values import zone

    settings = get_settings()
    tz = zone(settings.timezone)
    with database(settings) as session:
        partner = contest_ops.partner_by_code(session, code)
        team = session.get(Team, partner.team_id) if partner.team_id else None
        doc = {"partner": partner.code, "name": partner.name, "role": partner.role, "active": partner.active,
               "team": team.code if team else None, "timezone": settings.timezone,
               "accounts": [_account_doc(a, tz) for a in accounts_of(session, partner)]}
    if json_out:
        print_json(doc)
        return
    loc = _locale()
    out.print(t("cli.partner_line", loc, **{**doc, "role": t(f"demo.role_{doc['role']}", loc)}), markup=False)
    if not doc["accounts"]:
        out.print(t("cli.no_accounts", loc), markup=False)
        return
    for a in doc["accounts"]:  # one line each: user refs are long (OpenIDs), a table would wrap them
        status = t("cli.account_active" if a["active"] else "cli.account_inactive", loc)
        out.print(t("cli.account_line", loc, **a, status=status, zone=settings.timezone,
                    bound=_short(a["bound_at"]), seen=_short(a["last_seen_at"])), markup=False, highlight=False)


@partners_app.command("unbind")
def partners_unbind(code: str, platform: str | None = typer.Option(None, "--platform",
                                                                    help="telegram|wechat|wecom (default: all)"),
                    json_out: JsonOption = False) -> None:
    """Remove a partner's chat accounts (on one platform, or all); they bind again with a new invite."""
    from bot.settings import get_settings
    from messages.render import t
    from models import contests as contest_ops
    from models.identities import unbind
    from models.values import zone

    settings = get_settings()
    tz = zone(settings.timezone)
    with database(settings) as session:
        partner = contest_ops.partner_by_code(session, code)
        removed = [_account_doc(a, tz) for a in unbind(session, partner, platform)]
    if json_out:
        print_json({"partner": code, "removed": removed})
        return
    out.print(t("cli.unbound", _locale(), partner=code, count=len(removed),
                accounts=", ".join(f"{a['platform']}:{a['user_ref']}" for a in removed)), markup=False)


# --- contests ----------------------------------------------------------------------------------


