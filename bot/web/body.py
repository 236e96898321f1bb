"""Reading a request body, never more than a limit: the one reader of every route that takes a body
(the Telegram webhook, the WeChat and WeCom callbacks, `POST /api/sales`).

A declared `Content-Length` over the limit is refused before anything is read; a chunked body (no
length) or one that lies about its length is read only until it passes the limit, so a 300 MB
upload costs the server at most `limit` bytes and whatever uvicorn buffers.
"""

from __future__ import annotations

from starlette.requests import Request


class Rejected(Exception):
    """A request we refuse: `status` for the answer, `reason` for the log (never for the caller)."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


async def read_body(request: Request, limit: int) -> bytes:
    """The body, or `Rejected(413)` as soon as it is known to be larger than `limit` (400 for a
    Content-Length that is not a number)."""
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            size = int(declared) if declared.isascii() else -1
        except ValueError:
            size = -1
        if size < 0:
            raise Rejected(400, "unreadable Content-Length")
        if size > limit:
            raise Rejected(413, f"body of {declared} bytes declared, limit {limit}")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise Rejected(413, f"body over {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)
