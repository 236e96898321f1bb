"""Broadcasts: compose an announcement, pick its audience (the recipient count follows as you pick),
preview what each app will show — on the Official Account, for each recipient, whether their 48-hour
window lets a customer-service text through, or the template goes, or nothing — then send or
schedule it, and follow its delivery live.

The same functions as the chat's `/broadcast` and `mianzi broadcast`: `handlers.broadcasts.draft`,
`confirm`, `cancel` and `message_text`, `models.recipients.recipients`, `models.delivery_report.report`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlmodel import Session
from starlette.datastructures import FormData, ImmutableMultiDict
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from bot.channels.telegram.limits import fit_text as telegram_text
from bot.channels.wechat.limits import fit_template
from bot.channels.wechat.limits import fit_text as wechat_text
from bot.channels.wechat.push import window_open
from bot.console import MOUNT
from bot.console.paging import Paging
from bot.console.site import Site
from handlers import broadcasts as drafting
from messages.locales import LOCALES
from messages.render import local_time, t
from models import audiences, audit, delivery_report
from models.broadcasts import broadcast_by_id
from models.errors import DataError
from models.kinds import BroadcastStatus
from models.recipients import recipients
from models.rules import PLATFORM_KEY, PLATFORMS, SEGMENT_KEYS, segment_of
from models.tables import Broadcast
from models.values import as_utc, parse_datetime_local, utcnow, zone
from models.web_sessions import SignedIn

AUDIENCE_KEYS = (*SEGMENT_KEYS, PLATFORM_KEY)
LISTED = 300  # recipients the preview lists by name (the counts are always complete)
MISSED_SHOWN = 200
KIND = "broadcast"
STATUSES = ("sent", "pending", "sending", "failed", "blocked", "undeliverable")


@dataclass(frozen=True)
class Compose:
    """The compose form as sent: the text, the audience's fields, now or a time (program time zone)."""

    text: str
    audience: dict[str, str]
    later: bool
    at: str

    @classmethod
    def of(cls, params: ImmutableMultiDict[str, Any] | FormData) -> Compose:
        def field(name: str, size: int) -> str:
            value = params.get(name)
            return value.strip()[:size] if isinstance(value, str) else ""

        audience = {k: field(k, 64) for k in AUDIENCE_KEYS if field(k, 64)}
        return cls(field("text", drafting.MAX_TEXT * 2), audience, field("when", 8) == "later", field("at", 32))

    def segment(self) -> dict[str, str]:
        return segment_of(list(self.audience.items()), allow_role=True, allow_platform=True)

    def send_at(self, timezone: str, now: datetime) -> datetime:
        if not self.later:
            return now
        if not self.at:
            raise DataError("console.broadcasts.at_missing")
        try:
            at = parse_datetime_local(self.at, zone(timezone))
        except ValueError:
            raise DataError("console.broadcasts.at_bad", value=self.at) from None
        if at < now:
            raise DataError("console.broadcasts.at_past", value=self.at)
        return at


def routes(site: Site) -> list[Route]:
    pages, settings = site.pages, site.settings
    sending = {p: settings.sends(p) for p in PLATFORMS}

    async def compose_page(request: Request, admin: SignedIn, form: Compose, *, status: int = 200,
                           error: DataError | None = None) -> Response:
        def read(session: Session) -> dict[str, Any]:
            return {"choices": audiences.segment_choices(session=session), "count": _count(session, form)}

        return pages.render(request, "broadcast_new.html", admin=admin, status=status, form=form, error=error,
                            **await site.run(read), platforms=PLATFORMS, sending=sending,
                            cancelled=request.query_params.get("cancelled") == "1")

    async def listing(request: Request, admin: SignedIn) -> Response:
        paging = Paging.of(request)

        def read(session: Session) -> dict[str, Any]:
            rows, total = audiences.broadcasts_page(session=session, offset=paging.offset, limit=paging.size)
            return {"rows": rows, "total": total,
                    "counts": audiences.batch_counts(session=session, batch_ids=[r.id for r in rows], kind=KIND)}

        found = await site.run(read)
        return pages.render(request, "broadcasts.html", admin=admin, **found, now=utcnow(),
                            pager=paging.pager(found["total"], request))

    async def new(request: Request, admin: SignedIn) -> Response:
        return await compose_page(request, admin, Compose.of(request.query_params))

    async def count(request: Request, admin: SignedIn) -> Response:
        """The audience's recipient count as the form changes (htmx)."""
        form = Compose.of(request.query_params)
        found = await site.run(lambda session: _count(session, form))
        return pages.render(request, "broadcast_count.html", admin=admin, count=found, platforms=PLATFORMS)

    async def create(request: Request, admin: SignedIn) -> Response:
        """A draft (`handlers.broadcasts.draft`, as the chat's `/broadcast`), then its preview."""
        form = Compose.of(await request.form())
        now = utcnow()

        def change(session: Session) -> int:
            item, _count = drafting.draft(session, form.text, form.segment(), admin.partner_id,
                                          form.send_at(settings.timezone, now), now)
            return item.id

        try:
            ident = await site.run(change)
        except DataError as exc:
            return await compose_page(request, admin, form, status=400, error=exc)
        return RedirectResponse(f"{MOUNT}/broadcasts/{ident}", status_code=303)

    async def show(request: Request, admin: SignedIn) -> Response:
        ident = _ident(request)
        found = await site.run(lambda session: _shown(session, ident, admin, site))
        if found is None:
            return pages.message(request, "ops.no_broadcast", status=404, admin=admin, id=ident or "")
        return pages.render(request, "broadcast.html", admin=admin, **found, platforms=PLATFORMS, sending=sending,
                            tz=settings.timezone)

    async def progress(request: Request, admin: SignedIn) -> Response:
        ident = _ident(request)
        found = await site.run(lambda session: _progress(session, ident))
        if found is None:
            return pages.message(request, "ops.no_broadcast", status=404, admin=admin, id=ident or "")
        return pages.render(request, "broadcast_progress.html", admin=admin, progress=found, platforms=PLATFORMS)

    async def decide(request: Request, admin: SignedIn) -> Response:
        ident = _ident(request)
        send = request.url.path.endswith("/confirm")
        now = utcnow()

        def change(session: Session) -> Broadcast | None:
            item = broadcast_by_id(session, broadcast_id=ident) if ident is not None else None
            if item is None or item.created_by != admin.partner_id:
                return None
            if item.status != BroadcastStatus.DRAFT:
                raise DataError("broadcast.not_draft", id=item.id)
            if send:
                item = drafting.confirm(session, item.id, now, by=admin.partner_id)
            else:
                item = drafting.cancel(session, item.id, by=admin.partner_id)
            action = "ops.broadcast" if send else "ops.broadcast_cancel"
            audit.record(session, partner_id=admin.partner_id, action=action, now=now,
                         object_kind="ops.broadcast", object_ref=str(item.id),
                         details={**audit_segment(item.segment), "ops.recipients": item.recipients,
                                  "ops.send_at": local_time(item.send_at, settings.timezone)})
            return item

        try:
            item = await site.run(change)
        except DataError as exc:
            return pages.message(request, "ops.broadcast_refused", status=409, admin=admin,
                                 detail=t(exc.key, pages.locale(admin), **exc.params))
        if item is None:
            return pages.message(request, "ops.no_broadcast", status=404, admin=admin, id=ident or "")
        where = f"{MOUNT}/broadcasts/{item.id}" if send else f"{MOUNT}/broadcasts/new?cancelled=1"
        return RedirectResponse(where, status_code=303)

    return [Route("/broadcasts", site.access.page(listing), methods=["GET"]),
            Route("/broadcasts", site.access.page(create), methods=["POST"]),
            Route("/broadcasts/new", site.access.page(new), methods=["GET"]),
            Route("/broadcasts/count", site.access.page(count), methods=["GET"]),
            Route("/broadcasts/{ident}", site.access.page(show), methods=["GET"]),
            Route("/broadcasts/{ident}/progress", site.access.page(progress), methods=["GET"]),
            Route("/broadcasts/{ident}/confirm", site.access.page(decide), methods=["POST"]),
            Route("/broadcasts/{ident}/cancel", site.access.page(decide), methods=["POST"])]


def audit_segment(segment: dict[str, str]) -> dict[str, str]:
    """A segment as audit details (keys the audit log has words for)."""
    return {(f"ops.{k}" if k in ("industry", "size") else k): v for k, v in segment.items()}


def _ident(request: Request) -> int | None:
    raw = request.path_params["ident"]
    return int(raw) if raw.isdigit() and 0 < int(raw) < 2**31 else None


def _count(session: Session, form: Compose) -> dict[str, Any]:
    """How many the audience reaches now, in all and per app; or why the audience is not one."""
    try:
        segment = form.segment()
    except DataError as exc:
        return {"error": exc, "total": 0, "by": {}}
    by: dict[str, int] = {}
    people = recipients(session, segment=segment)
    for r in people:
        by[r.platform] = by.get(r.platform, 0) + 1
    return {"error": None, "total": len(people), "by": by}


def _shown(session: Session, ident: int | None, admin: SignedIn, site: Site) -> dict[str, Any] | None:
    item = broadcast_by_id(session, broadcast_id=ident) if ident is not None else None
    if item is None or item.status == BroadcastStatus.CANCELLED:
        return None
    if item.status == BroadcastStatus.DRAFT:
        if item.created_by != admin.partner_id:  # another admin's draft is theirs to send
            return None
        return {"item": item, "preview": _preview(session, item, site), "progress": None}
    return {"item": item, "preview": None, "progress": _progress(session, item.id)}


def _preview(session: Session, item: Broadcast, site: Site) -> dict[str, Any]:
    """What each app will show, per language in the audience, and each recipient's way in."""
    settings = site.settings
    people = audiences.described(session=session, people=recipients(session, segment=item.segment))
    at = max(as_utc(item.send_at), utcnow())
    locales = sorted({p.locale for p in people} or {settings.locale}, key=lambda x: LOCALES.index(x)
                     if x in LOCALES else 99)
    texts = {loc: drafting.message_text(session, item, loc) for loc in locales}
    template = bool(settings.wechat_template_id)
    by: dict[str, int] = {}
    wechat = {"custom": 0, "template": 0, "none": 0}
    listed: list[dict[str, Any]] = []
    for p in people:
        by[p.platform] = by.get(p.platform, 0) + 1
        way = "text"
        if p.platform == "wechat":
            way = "custom" if window_open(p.last_seen_at, p.window_pushes, at) else \
                "template" if template else "none"
            wechat[way] += 1
        if len(listed) < LISTED:
            left = max(0, 5 - p.window_pushes) if way == "custom" else 0
            listed.append({"who": p, "way": way, "left": left})
    shown = {loc: {"telegram": telegram_text(text), "wechat": wechat_text(text), "template": fit_template(text),
                   "wecom": wechat_text(text)} for loc, text in texts.items()}
    return {"total": len(people), "by": by, "wechat": wechat, "texts": shown, "listed": listed,
            "template_time": local_time(at, settings.timezone), "template_on": template}


def _progress(session: Session, ident: int | None) -> dict[str, Any] | None:
    item = broadcast_by_id(session, broadcast_id=ident) if ident is not None else None
    if item is None or item.status != BroadcastStatus.QUEUED:
        return None
    data = delivery_report.report(session, batch_id=item.id, kind=KIND)
    channels: dict[str, dict[str, int]] = data["channels"]
    totals = {s: sum(c.get(s, 0) for c in channels.values()) for s in STATUSES}
    queued = sum(totals.values())
    open_ = totals["pending"] + totals["sending"]
    missed, missed_total = audiences.missed(session=session, batch_id=item.id, kind=KIND, limit=MISSED_SHOWN)
    scheduled = as_utc(item.send_at) > utcnow() and open_ == queued and queued > 0
    return {"item": item, "channels": channels, "totals": totals, "queued": queued, "open": open_,
            "done": open_ == 0, "all_sent": queued > 0 and totals["sent"] == queued, "missed": missed,
            "missed_total": missed_total, "reasons": data["reasons"], "scheduled": scheduled,
            "percent": 100 if queued == 0 else (queued - open_) * 100 // queued}
