"""The page keeps itself up to date: server-sent events when the dealer's standing changes.

Each connection looks at the open contests' standings version (`standings_at`) every `POLL`
seconds — through one `Watch` per process, so that a thousand open pages still cost one small query
per `POLL` — and only when it moved reads the dealer's own marks (rank, score, tier in each running
contest); if those changed it sends an event `standing` with them. The page then fetches
its main part again and celebrates a place gained or a tier reached. A comment line every
`KEEPALIVE` seconds keeps proxies from closing an idle stream; a connection lasts at most
`LIFETIME` (the browser's EventSource reconnects by itself, and the session is checked again).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from bot.dealer.site import Site
from handlers import dealer_page
from models.values import utcnow
from models.web_sessions import SignedIn

POLL = 2.0
KEEPALIVE = 20.0
LIFETIME = 600.0


class Watch:
    """The standings version, read from the database at most once per `every` seconds for all the
    connections of this process."""

    def __init__(self, site: Site, every: float) -> None:
        self.site = site
        self.every = every
        self._value: str | None = None
        self._read_at = 0.0
        self._lock = asyncio.Lock()

    async def version(self) -> str:
        async with self._lock:
            if self._value is None or time.monotonic() - self._read_at >= self.every:
                self._value = await self.site.run(dealer_page.standings_version)
                self._read_at = time.monotonic()
            return self._value


def event(name: str, data: Any) -> str:
    return f"event: {name}\ndata: {json.dumps(data, ensure_ascii=False, separators=(',', ':'))}\n\n"


def routes(site: Site, *, poll: float = POLL) -> list[Route]:
    watch = Watch(site, poll)

    async def events(request: Request, dealer: SignedIn) -> Response:
        async def stream() -> AsyncIterator[str]:
            version = await watch.version()
            marks = await site.run(lambda s: dealer_page.standing_marks(s, partner_id=dealer.partner_id,
                                                                        now=utcnow()))
            yield "retry: 3000\n" + event("hello", {"marks": marks})
            started = last_sent = time.monotonic()
            while time.monotonic() - started < LIFETIME:
                await asyncio.sleep(poll)
                if await request.is_disconnected():
                    return
                now_version = await watch.version()
                if now_version != version:
                    version = now_version
                    fresh = await site.run(lambda s: dealer_page.standing_marks(s, partner_id=dealer.partner_id,
                                                                                now=utcnow()))
                    if fresh != marks:
                        yield event("standing", {"before": marks, "marks": fresh})
                        marks, last_sent = fresh, time.monotonic()
                        continue
                if time.monotonic() - last_sent >= KEEPALIVE:
                    yield ": keepalive\n\n"
                    last_sent = time.monotonic()

        return StreamingResponse(stream(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})

    return [Route("/events", site.access.page(events), methods=["GET"])]
