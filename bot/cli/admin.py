"""`mianzi admin …`: the web console's side on the server."""

from __future__ import annotations

import typer

from bot.cli.common import JsonOption, _locale, database, fail, out, print_json

admin_app = typer.Typer(no_args_is_help=True, help="The admin web console (/admin/).")


@admin_app.command("link")
def admin_link(code: str = typer.Argument(..., metavar="PARTNER_CODE", help="an admin's partner code"),
               json_out: JsonOption = False) -> None:
    """A one-time sign-in link to the console for an admin: valid 10 minutes, once."""
    from bot.console import SIGNIN
    from bot.settings import get_settings
    from messages.render import t
    from models import web_sessions
    from models.kinds import WebKind
    from models.partners import partner_by_code_any_case
    from models.values import utcnow

    settings = get_settings()
    signin_url = settings.public_link(SIGNIN)
    if signin_url is None:
        fail("console.cli.no_public_url")
    now = utcnow()
    with database(settings) as session:
        partner = partner_by_code_any_case(session, code=code.strip())
        if partner is None:
            fail("error.unknown_partner", value=code)
        if not web_sessions.allowed(partner, WebKind.CONSOLE):
            fail("console.cli.not_admin", code=partner.code, name=partner.name)
        token = web_sessions.issue_link(session, partner=partner, kind=WebKind.CONSOLE, now=now)
        who = {"code": partner.code, "name": partner.name}
    url = web_sessions.link_url(signin_url, token)
    expires = now + web_sessions.LINK_TTL
    if json_out:
        print_json({"partner": who["code"], "name": who["name"], "url": url, "expires_at": expires.isoformat()})
        return
    minutes = int(web_sessions.LINK_TTL.total_seconds() // 60)
    out.print(t("console.cli.link", _locale(), name=who["name"], minutes=minutes), markup=False)
    out.print(url, markup=False, highlight=False)
