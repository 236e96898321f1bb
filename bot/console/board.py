"""The meeting-room board: `/board/<token>` (outside /admin, no cookie), a contest's public board for a
TV or a projector, and `/board/<token>/events`, its server-sent events.

The page shows only what is public (`handlers.boards`: the top N, the team race of a team contest,
tiers reached, the time left) and follows the standings by itself: the event stream looks at the
link's contest every `POLL_SECONDS` (one row by the token's unique index), rebuilds standings an
import left stale, and sends the board again when `standings_at` moved (or every `TICK_SECONDS`,
for the time left), with what to celebrate. A revoked link ends the stream; the page says so.
`?lang=en` shows the board in English (the program's language otherwise).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

from sqlalchemy import Engine
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response, StreamingResponse
from starlette.routing import Route

from bot.console import MOUNT
from bot.console.pages import Pages
from bot.settings import Settings
from handlers.boards import Board, board_view, celebrations
from handlers.refresh import refresh_contest
from messages import render
from messages.locales import LOCALES
from models import board_links
from models import contests as contest_ops
from models.db import session_scope
from models.values import utcnow

POLL_SECONDS = 2.0
TICK_SECONDS = 30.0
_HEADERS = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer", "X-Robots-Tag": "noindex"}


def board_routes(settings: Settings, engine: Engine) -> list[Route]:
    pages = Pages(default_locale=settings.locale, timezone=settings.timezone, public_url=settings.public_url)

    def locale_of(request: Request) -> str:
        chosen = request.query_params.get("lang", settings.locale)
        return chosen if chosen in LOCALES else settings.locale

    def html(template: str, locale: str, **context: Any) -> str:
        def t(key: str, **params: Any) -> str:
            return render.t(key, locale, **params)

        return pages.env.get_template(template).render(
            t=t, locale=locale, static=f"{MOUNT}/static", num=render.number,
            score=lambda value, metric: render.score_text(value, metric, locale),
            period=lambda start, end: render.period_text(start, end, settings.timezone),
            medal=render.medal, duration=lambda seconds: _duration(seconds, locale), **context)

    def read(token: str) -> tuple[Board | None, board_links.BoardState | None]:
        with session_scope(engine) as session:
            found = board_links.state(session, token=token)
            if found is None or found.revoked or found.cancelled_at is not None:
                return None, found
            return _view(session, found), found

    def _view(session: Session, found: board_links.BoardState) -> Board | None:
        now = utcnow()
        if found.standings_dirty and found.closed_at is None:
            refresh_contest(session, found.contest_id, now)  # as the chat's board does after an import
        contest = contest_ops.contest_by_id(session, contest_id=found.contest_id)
        return board_view(session, contest, now) if contest is not None else None

    def poll(token: str) -> board_links.BoardState | None:
        with session_scope(engine) as session:
            return board_links.state(session, token=token)

    async def page(request: Request) -> Response:
        token = request.path_params["token"]
        locale = locale_of(request)
        board, _state = await run_in_threadpool(read, token)
        if board is None:
            return HTMLResponse(html("board_gone.html", locale), status_code=404, headers=_HEADERS)
        events = f"/board/{token}/events" + (f"?lang={locale}" if "lang" in request.query_params else "")
        return HTMLResponse(html("board.html", locale, b=board, events=events, celebrate=[]), headers=_HEADERS)

    async def events(request: Request) -> Response:
        token = request.path_params["token"]
        locale = locale_of(request)

        async def stream() -> AsyncIterator[str]:
            last: Board | None = None
            seen: tuple[Any, ...] | None = None
            waited = TICK_SECONDS
            while True:
                state = await run_in_threadpool(poll, token)
                if state is None or state.revoked or state.cancelled_at is not None:
                    yield _event("gone", {"html": html("board_gone_part.html", locale)})
                    return
                moved = (state.standings_at, state.standings_dirty, state.closed_at)
                if moved != seen or waited >= TICK_SECONDS:
                    board, state = await run_in_threadpool(read, token)
                    if board is not None:  # (None: revoked or cancelled meanwhile; the next poll says so)
                        cheers = celebrations(last, board)
                        yield _event("board", {"html": html("board_part.html", locale, b=board, celebrate=cheers),
                                               "celebrate": bool(cheers)})
                        last, waited = board, 0.0
                        seen = (state.standings_at, False, state.closed_at) if state is not None else None
                await asyncio.sleep(POLL_SECONDS)
                waited += POLL_SECONDS

        return StreamingResponse(stream(), media_type="text/event-stream",
                                 headers={**_HEADERS, "X-Accel-Buffering": "no"})

    return [Route("/board/{token}", page, methods=["GET"]), Route("/board/{token}/events", events, methods=["GET"])]


def _event(name: str, data: dict[str, Any]) -> str:
    return f"event: {name}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


def _duration(seconds: int, locale: str) -> str:
    days, rest = divmod(max(0, seconds), 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    return render.t("console.board.duration", locale, days=days, hours=hours, minutes=minutes)
