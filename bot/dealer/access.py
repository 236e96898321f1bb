"""Who is looking at the dealer page: the dealer session's cookie (`bot.web.session`, kind `dealer`)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from bot.dealer.pages import Pages
from bot.web.session import WebSessions
from models.web_sessions import SignedIn

Handler = Callable[[Request, SignedIn], Awaitable[Response]]
Endpoint = Callable[[Request], Awaitable[Response]]
Fallback = Callable[[Request], Awaitable[Response]]


class Access:
    def __init__(self, sessions: WebSessions, pages: Pages) -> None:
        self.sessions = sessions
        self.pages = pages

    def page(self, handler: Handler, signed_out: Fallback | None = None) -> Endpoint:
        """`handler(request, dealer)` for a live dealer session; otherwise `signed_out(request)`, or a
        bare 401 (the calls the page makes: the calculator, the events, the images)."""

        async def endpoint(request: Request) -> Response:
            dealer = await run_in_threadpool(self.sessions.current, request)
            if dealer is None:
                if signed_out is not None:
                    return await signed_out(request)
                return JSONResponse({"error": "signed_out"}, status_code=401, headers={"Cache-Control": "no-store"})
            return await handler(request, dealer)

        endpoint.__name__ = handler.__name__
        return endpoint
