"""The dealer page's templates, rendered in the dealer's language, with its style sheet and script
inlined (the first view is one request, no framework: fast on a phone over 4G)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import Markup
from starlette.requests import Request
from starlette.responses import HTMLResponse

from bot.dealer import MOUNT
from messages import render
from messages.locales import LOCALES

TEMPLATES = Path(__file__).parent / "templates"
STATIC = Path(__file__).parent / "static"

# Pages show personal data: no shared cache may keep them. A Mini App runs inside Telegram's own
# frame, so framing is not forbidden; nothing loads from elsewhere (the CSP says so).
HEADERS = {"Cache-Control": "no-store", "Referrer-Policy": "same-origin",
           "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'unsafe-inline'; "
                                      "script-src 'unsafe-inline'; connect-src 'self'; form-action 'self' "
                                      "https://open.weixin.qq.com; base-uri 'none'"}


class Pages:
    def __init__(self, *, default_locale: str, timezone: str) -> None:
        self.default_locale = default_locale
        self.timezone = timezone
        self.env = Environment(loader=FileSystemLoader(str(TEMPLATES)), autoescape=select_autoescape(["html"]),
                               undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
        self.css = Markup((STATIC / "dealer.css").read_text(encoding="utf-8"))  # noqa: S704 (our own file)
        self.js = Markup((STATIC / "dealer.js").read_text(encoding="utf-8"))  # noqa: S704

    def locale(self, chosen: str | None) -> str:
        return chosen if chosen in LOCALES else self.default_locale

    def render(self, request: Request, template: str, *, locale: str | None, status: int = 200,
               **context: Any) -> HTMLResponse:
        lang = self.locale(locale)

        def t(key: str, **params: Any) -> str:
            return render.t("dealer." + key, lang, **params)

        def when(value: datetime | None, fmt: str = "%m-%d") -> str:
            return "" if value is None else render.local_time(value, self.timezone, fmt)

        page = self.env.get_template(template).render(
            request=request, locale=lang, root=MOUNT, t=t, tw=lambda key, **p: render.t(key, lang, **p),
            when=when, money=lambda fen: render.money(fen, lang), num=render.number, pct=render.percent,
            score=lambda value, metric: render.score_text(value, metric, lang),
            reason=lambda r, metric: render.reason_text(r, metric, lang), medal=render.medal,
            period=lambda start, end, tz: render.period_text(start, end, tz),
            deadline=lambda end, tz: render.deadline(end, tz),
            dated=lambda name, start, tz: render.dated_name(name, start, tz, lang),
            css=self.css, js=self.js, **context)
        return HTMLResponse(page, status_code=status, headers=HEADERS)

    def message(self, request: Request, key: str, *, status: int, locale: str | None = None,
                **params: Any) -> HTMLResponse:
        """One title and one paragraph (`dealer.refusal.<key>_title`, `….<key>`)."""
        return self.render(request, "message.html", locale=locale, status=status, key=key, params=params)
