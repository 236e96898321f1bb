"""Who may use a console route: a signed-in admin, and for every POST the session's CSRF token.

`Access.page` wraps a route handler `(request, admin) -> response`: without a live console
session the answer is the sign-in help (401); a POST without the session's token — a form field
`csrf`, or the header `X-CSRF-Token` that htmx sends — gets the refusal page (403) and the handler
never runs, so nothing changes. A body larger than the upload cap, or of no stated length, is
refused before it is read (413).
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response

from bot.console.pages import Pages
from bot.web.session import WebSessions
from models.web_sessions import SignedIn

Handler = Callable[[Request, SignedIn], Awaitable[Response]]
Endpoint = Callable[[Request], Awaitable[Response]]

CSRF_FIELD = "csrf"
CSRF_HEADER = "x-csrf-token"


class Access:
    def __init__(self, sessions: WebSessions, pages: Pages, *, max_upload_bytes: int) -> None:
        self.sessions = sessions
        self.pages = pages
        self.max_upload_bytes = max_upload_bytes

    def page(self, handler: Handler) -> Endpoint:
        async def endpoint(request: Request) -> Response:
            admin = await run_in_threadpool(self.sessions.current, request)
            if admin is None:
                return self.pages.signed_out(request)
            try:
                if request.method == "POST":
                    refused = await self._refused(request, admin)
                    if refused is not None:
                        return refused
                return await handler(request, admin)
            finally:
                await request.close()  # a parsed form's uploaded files (spooled temporary files)

        endpoint.__name__ = handler.__name__
        return endpoint

    async def _refused(self, request: Request, admin: SignedIn) -> Response | None:
        size = request.headers.get("content-length")
        # Browsers send a form's length; a body without one (chunked) could be of any size: refused unread
        if size is None or not size.isdigit() or int(size) > self.max_upload_bytes:
            return self.pages.message(request, "too_big", status=413, admin=admin,
                                      max=self.max_upload_bytes // (1024 * 1024))
        given = request.headers.get(CSRF_HEADER)
        if given is None:
            form = await self._form(request)
            field = form.get(CSRF_FIELD) if form is not None else None
            given = field if isinstance(field, str) else None
        if not given or not hmac.compare_digest(given.encode(), admin.csrf_token.encode()):
            return self.pages.message(request, "csrf", status=403, admin=admin)
        return None

    @staticmethod
    async def _form(request: Request) -> FormData | None:
        """The POST's form (Starlette keeps it for the handler), or None when the body is no form."""
        kind = request.headers.get("content-type", "")
        if not kind.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
            return None
        return await request.form(max_files=1, max_fields=200)
