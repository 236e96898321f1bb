"""`mianzi partners …`: partners and teams."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import typer

from bot.cli.common import JsonOption, SheetOption, _locale, _report, guarded, import_table, out, print_json

partners_app = typer.Typer(no_args_is_help=True, help="Partners and teams.")


@partners_app.command("import")
def partners_import(file: Path, sheet: SheetOption = None) -> None:
    """Add or update partners and teams from a CSV or .xlsx file."""
    _report("partners", import_table("partners", file, sheet))


CHOOSE_HELP = ("--all: every active dealer and captain (admins only by CODE); --segment and --unbound "
               "narrow that down and may be combined.")


@partners_app.command("invite")
def partners_invite(
    code: str | None = typer.Argument(None, metavar="[CODE]", help="One partner (an admin too)."),
    everyone: bool = typer.Option(False, "--all", help="Every active dealer and captain (not admins)."),
    segment: str | None = typer.Option(None, "--segment", help="KEY=VALUE,… (region, city_tier, industry, size, "
                                       "team, role): the dealers and captains in it."),
    unbound: bool = typer.Option(False, "--unbound", help="Those with no chat account bound yet."),
    out_file: Path | None = typer.Option(None, "--out", help="Write the sheet: FILE.xlsx (QR codes as pictures) "
                                         "or FILE.csv."),
    posters: Path | None = typer.Option(None, "--posters", help="Write one printable A5 PNG per partner here."),
    json_out: JsonOption = False,
) -> None:
    """Fresh one-time invite codes (older unused ones stop working), with Telegram links and QR codes.

    One partner by CODE, or many: --all (active dealers and captains; admins only by CODE), or
    --segment / --unbound. With the WeChat Official Account set up, each invite also gets a WeChat
    QR code (scan to follow and bind), valid as long as the invite (at most 30 days).
    """
    from bot import context
    from bot.cli.common import err
    from bot.onboarding import invite
    from bot.settings import get_settings
    from messages.render import local_time, t, zone_name
    from models.roster import Selection
    from models.rules import parse_segment

    settings = get_settings()
    loc = _locale()
    with guarded():
        selection = Selection(code=code, everyone=everyone, segment=parse_segment(segment, allow_role=True) or None,
                              unbound=unbound)
        selection.check("partners invite")
        run = invite(settings, context.engine(settings), selection, out=out_file, posters=posters)
    lines = run.batch.lines
    if json_out:
        doc = {"count": len(lines), "revoked": run.batch.revoked, "expires_at": run.batch.expires_at.isoformat(),
               "wechat": run.wechat, "wechat_failed": run.wechat_failed,
               "out": str(run.out) if run.out else None, "posters": [str(p) for p in run.posters],
               "invites": [line.doc() for line in lines]}
        if code is not None:  # one partner: its fields at the top too, as before
            doc.update({k: v for k, v in lines[0].doc().items() if k != "name"})
        print_json(doc)
        return
    if code is not None and out_file is None and posters is None:
        line = lines[0]
        out.print(t("cli.invite", loc, partner=line.partner, code=line.invite, days=settings.invite_ttl_days),
                  markup=False)
        out.print(t("cli.invite_link", loc, link=line.telegram_link), markup=False)
        if line.wechat.get("image_url"):
            out.print(t("onboard.wechat_link", loc, link=line.wechat["image_url"]), markup=False)
    elif out_file is None and posters is None:
        for line in lines:
            out.print(f"{line.partner}\t{line.name}\t{line.invite}\t{line.telegram_link}", markup=False,
                      highlight=False)
    out.print(t("onboard.invited", loc, count=len(lines), revoked=run.batch.revoked,
                expires=local_time(run.batch.expires_at, settings.timezone),
                zone=zone_name(settings.timezone, loc)), markup=False)
    if not run.wechat:
        out.print(t("onboard.wechat_off_note", loc), markup=False)
    elif run.wechat_failed:
        err.print(t("onboard.wechat_some_failed", loc, count=run.wechat_failed), markup=False)
    if run.out:
        out.print(t("onboard.sheet_written", loc, path=str(run.out)), markup=False)
    if run.posters:
        out.print(t("onboard.posters_written", loc, count=len(run.posters), path=str(posters)), markup=False)


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
    """A partner: attributes, chat accounts, points balance, and the open contests they are in."""
    from bot import context
    from bot.settings import get_settings
    from handlers.onboarding import profile
    from messages.render import score_text, t
    from models import contests as contest_ops
    from models.db import session_scope
    from models.values import utcnow, zone

    settings = get_settings()
    tz = zone(settings.timezone)
    with guarded(), session_scope(context.engine(settings)) as session:
        partner = contest_ops.partner_by_code(session, code)
        found = profile(session, partner, utcnow())
    doc = {**found, "timezone": settings.timezone, "accounts": [_account_doc(a, tz) for a in found["accounts"]],
           "joined_on": found["joined_on"].isoformat() if found["joined_on"] else None}
    if json_out:
        print_json(doc)
        return
    loc = _locale()
    words = {k: v for k, v in doc.items() if k != "locale"}  # `locale` is t()'s own argument
    out.print(t("cli.partner_line", loc, **{**words, "role": t(f"demo.role_{doc['role']}", loc)}), markup=False)
    out.print(t("onboard.attributes", loc, **words, language=doc["locale"]), markup=False, highlight=False)
    out.print(t("onboard.points", loc, points=doc["points"]), markup=False, highlight=False)
    if not doc["accounts"]:
        out.print(t("cli.no_accounts", loc), markup=False)
    for a in doc["accounts"]:  # one line each: user refs are long (OpenIDs), a table would wrap them
        status = t("cli.account_active" if a["active"] else "cli.account_inactive", loc)
        out.print(t("cli.account_line", loc, **a, status=status, zone=settings.timezone,
                    bound=_short(a["bound_at"]), seen=_short(a["last_seen_at"])), markup=False, highlight=False)
    if not doc["contests"]:
        out.print(t("onboard.no_contests", loc), markup=False)
    for c in doc["contests"]:
        out.print(t("onboard.contest_line", loc, **c, status_text=t(f"status.{c['status']}", loc),
                    score_text=score_text(c["score"], c["metric"], loc)), markup=False, highlight=False)


def _selection(segment: str | None, unbound: bool) -> Any:
    from models.roster import Selection
    from models.rules import parse_segment

    return Selection(segment=parse_segment(segment, allow_role=True) or None, unbound=unbound)


@partners_app.command("list")
def partners_list(
    segment: str | None = typer.Option(None, "--segment", help="KEY=VALUE,… (region, city_tier, industry, size, "
                                       "team, role)"),
    unbound: bool = typer.Option(False, "--unbound", help="Only those with no chat account bound."),
    json_out: JsonOption = False,
) -> None:
    """Every partner (admins too), with team, region, city tier, role, bound platforms and last seen."""
    from rich.table import Table

    from bot import context
    from bot.cli.common import time_column, when
    from bot.settings import get_settings
    from messages.render import t
    from models.db import session_scope
    from models.roster import listing
    from models.values import zone

    settings = get_settings()
    loc = _locale()
    with guarded():
        selection = _selection(segment, unbound)
        with session_scope(context.engine(settings)) as session:
            rows = listing(session, selection)
    if json_out:
        tz = zone(settings.timezone)
        print_json({"timezone": settings.timezone, "partners": [
            {**r.doc(), "last_seen_at": r.last_seen_at.astimezone(tz).isoformat(timespec="minutes")
             if r.last_seen_at else None} for r in rows]})
        return
    if not rows:
        out.print(t("onboard.nobody", loc), markup=False)
        return
    table = Table(*(t(f"onboard.col_{k}", loc) for k in ("partner", "name", "team", "region", "city_tier", "role",
                                                         "platforms")),
                  time_column(t("onboard.col_last_seen", loc)))
    for r in rows:
        name = r.name if r.active else t("onboard.inactive_name", loc, name=r.name)
        table.add_row(r.code, name, r.team or "-", r.region or "-",
                      t(f"onboard.tier_{r.city_tier}", loc) if r.city_tier else "-", t(f"demo.role_{r.role}", loc),
                      "、".join(t(f"platform.{p}", loc) for p in r.platforms) or t("onboard.not_bound", loc),
                      when(r.last_seen_at))
    out.print(table)
    bound = sum(1 for r in rows if r.platforms)
    out.print(t("onboard.list_total", loc, count=len(rows), bound=bound), markup=False)


@partners_app.command("unbind")
def partners_unbind(code: str, platform: str | None = typer.Option(None, "--platform",
                                                                    help="telegram|wechat|wecom (default: all)"),
                    json_out: JsonOption = False) -> None:
    """Remove a partner's chat accounts (on one platform, or all); they bind again with a new invite."""
    from bot import context
    from bot.settings import get_settings
    from messages.render import t
    from models import contests as contest_ops
    from models.db import session_scope
    from models.identities import unbind
    from models.values import zone

    settings = get_settings()
    tz = zone(settings.timezone)
    with guarded(), session_scope(context.engine(settings)) as session:
        partner = contest_ops.partner_by_code(session, code)
        removed = [_account_doc(a, tz) for a in unbind(session, partner, platform)]
    if json_out:
        print_json({"partner": code, "removed": removed})
        return
    out.print(t("cli.unbound", _locale(), partner=code, count=len(removed),
                accounts=", ".join(f"{a['platform']}:{a['user_ref']}" for a in removed)), markup=False)


# --- contests ----------------------------------------------------------------------------------


