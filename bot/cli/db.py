"""`mianzi db …`: database schema."""

from __future__ import annotations

import typer

from bot.cli.common import _locale, guarded, out

db_app = typer.Typer(no_args_is_help=True, help="Database schema.")


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Create or migrate the schema."""
    from bot import context
    from bot.settings import get_settings
    from messages.render import t

    settings = get_settings()
    with guarded():
        context.engine(settings)
    out.print(t("cli.db_upgraded", _locale(), url=_safe_url(settings.database_url)), markup=False)


def _safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


# --- imports -----------------------------------------------------------------------------------


