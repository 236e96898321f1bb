"""The console's pages: its jinja2 templates, rendered in the admin's language, and the pages that
refuse (a missing sign-in, a bad link, a missing CSRF token, an unknown page, an error).

Templates hold no words: each is `t("console.…")` from `messages/<locale>/console.toml`, with the
formatting filters of the chat's replies (`money`, `num`, `when`), so a figure reads the same in
both places.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse

from bot.console import MOUNT
from messages import render
from messages.locales import LOCALES
from models import rewards
from models.web_sessions import SignedIn

TEMPLATES = Path(__file__).parent / "templates"


class Pages:
    """Renders a console template for one request: the signed-in admin (or None), the language,
    the CSRF token for its forms, and the words."""

    def __init__(self, *, default_locale: str, timezone: str, public_url: str | None) -> None:
        self.default_locale = default_locale
        self.timezone = timezone
        self.public_url = public_url
        self.env = Environment(loader=FileSystemLoader(str(TEMPLATES)), autoescape=select_autoescape(["html"]),
                               undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)

    def locale(self, admin: SignedIn | None) -> str:
        chosen = admin.locale if admin is not None else self.default_locale
        return chosen if chosen in LOCALES else self.default_locale

    def render(self, request: Request, template: str, *, admin: SignedIn | None, status: int = 200,
               **context: Any) -> HTMLResponse:
        locale = self.locale(admin)

        def t(key: str, **params: Any) -> str:
            return render.t(key, locale, **params)

        def when(value: datetime | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
            return "" if value is None else render.local_time(value, self.timezone, fmt)

        page = self.env.get_template(template).render(
            request=request, admin=admin, locale=locale, root=MOUNT, static=f"{MOUNT}/static",
            csrf=admin.csrf_token if admin is not None else "", t=t, when=when,
            money=lambda fen: render.money(fen, locale), num=render.number, signed=render.signed,
            score=lambda value, metric: render.score_text(value, metric, locale),
            item_name=lambda item: rewards.name(item, locale), path=request.url.path,
            period=lambda start, end: render.period_text(start, end, self.timezone),
            **context)
        return HTMLResponse(page, status_code=status, headers=_NO_STORE)

    def message(self, request: Request, key: str, *, status: int, admin: SignedIn | None = None,
                signin_help: bool = False, **params: Any) -> HTMLResponse:
        """A page with one title and one paragraph (`console.refusal.<key>_title`, `….<key>`): why
        nothing happened, and where to go from here."""
        return self.render(request, "message.html", admin=admin, status=status, key=key, params=params,
                           signin_help=signin_help, public_url_set=bool(self.public_url))

    def signed_out(self, request: Request) -> HTMLResponse:
        """Not signed in (no cookie, or the session ended): how to get a sign-in link."""
        return self.render(request, "signed_out.html", admin=None, status=401,
                           public_url_set=bool(self.public_url), just_left=False)


# Pages show personal data: no shared cache may keep them, the browser may not serve them after sign-out.
_NO_STORE = {"Cache-Control": "no-store", "X-Frame-Options": "DENY", "Referrer-Policy": "same-origin"}
