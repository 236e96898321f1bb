"""The partners: a searchable, filtered, paged list; one partner's page (unbind an account); the
invites of the list's current filter (the sheet, or the posters), as `mianzi partners invite` makes them."""

from __future__ import annotations

import io
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlmodel import Session
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, ImmutableMultiDict
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from bot.console import MOUNT
from bot.console.paging import Paging
from bot.console.site import Site
from bot.onboarding import invite
from handlers.onboarding import Batch, profile
from models import audit, results, roster
from models.errors import DataError
from models.identities import unbind
from models.kinds import Role
from models.partners import partner_by_code_any_case
from models.points import entries
from models.rewards import redemptions
from models.roster import Selection
from models.values import utcnow
from models.web_sessions import SignedIn

PLATFORMS = ("telegram", "wechat", "wecom")
FILTERS = ("q", "team", "region", "city_tier", "role", "bound")


@dataclass(frozen=True)
class Filter:
    """The list's filters as the form sends them (each one optional), and the `Selection` they make."""

    values: dict[str, str]

    @classmethod
    def of(cls, params: ImmutableMultiDict[str, Any] | FormData) -> Filter:
        values = {}
        for name in FILTERS:
            value = params.get(name)
            if isinstance(value, str) and value.strip():
                values[name] = value.strip()[:64]
        if values.get("city_tier") not in (None, "1", "2", "3"):
            values.pop("city_tier")
        if values.get("role") not in (None, *Role):
            values.pop("role")
        if values.get("bound") not in (None, "yes", "no"):
            values.pop("bound")
        return cls(values)

    def selection(self) -> Selection:
        keys = ("team", "region", "city_tier", "role")
        segment: dict[str, str] = {k: self.values[k] for k in keys if k in self.values}
        return Selection(segment=segment or None, unbound=self.values.get("bound") == "no",
                         bound=self.values.get("bound") == "yes", text=self.values.get("q"))

    def invite_selection(self) -> Selection:
        """Whom the invite buttons reach: the list's filter (only dealers and captains, as `--all`)."""
        chosen = self.selection()
        if not (chosen.segment or chosen.unbound or chosen.bound or chosen.text):
            return Selection(everyone=True)
        return chosen


def routes(site: Site) -> list[Route]:
    pages = site.pages

    async def listing(request: Request, admin: SignedIn) -> Response:
        paging = Paging.of(request)
        chosen = Filter.of(request.query_params)

        def read(session: Session) -> dict[str, Any]:
            # "not joined" lists whom an invite is for (active dealers and captains), as the dashboard counts them
            rows, total = roster.search(session, selection=chosen.selection(), offset=paging.offset,
                                        limit=paging.size, invitable=chosen.values.get("bound") == "no")
            invitable = roster.count(session, selection=chosen.invite_selection(), invitable=True) \
                if chosen.values.get("bound") != "yes" else 0
            return {"rows": rows, "total": total, "choices": roster.choices(session), "invitable": invitable}

        found = await site.run(read)
        return pages.render(request, "partners.html", admin=admin, **found, filters=chosen.values,
                            pager=paging.pager(found["total"], request), platforms=PLATFORMS)

    async def partner_page(request: Request, admin: SignedIn) -> Response:
        code = request.path_params["code"]

        def read(session: Session) -> dict[str, Any] | None:
            partner = partner_by_code_any_case(session, code=code)
            if partner is None:
                return None
            return {"p": profile(session, partner, utcnow()), "ledger": entries(session, partner.id, limit=30),
                    "results": results.of_partner(session, partner_id=partner.id, limit=20),
                    "redemptions": [(r, i) for r, i, _p in redemptions(session, partner_id=partner.id)][-20:][::-1]}

        found = await site.run(read)
        if found is None:
            return pages.message(request, "no_partner", status=404, admin=admin, code=code)
        done = request.query_params.get("done")
        return pages.render(request, "partner.html", admin=admin, **found, done=done)

    async def unbind_account(request: Request, admin: SignedIn) -> Response:
        code = request.path_params["code"]
        form = await request.form()
        platform = form.get("platform")
        chosen = platform if isinstance(platform, str) and platform in PLATFORMS else None

        def change(session: Session) -> str | None:
            partner = partner_by_code_any_case(session, code=code)
            if partner is None:
                return None
            removed = unbind(session, partner, chosen)
            audit.record(session, partner_id=admin.partner_id, action="unbind", now=utcnow(),
                         object_kind="partner", object_ref=partner.code,
                         details={"platform": chosen or "*", "accounts": len(removed)})
            return partner.code

        found = await site.run(change)
        if found is None:
            return pages.message(request, "no_partner", status=404, admin=admin, code=code)
        return RedirectResponse(f"{MOUNT}/partners/{found}?done=unbound", status_code=303)

    async def invites(request: Request, admin: SignedIn) -> Response:
        form = await request.form()
        chosen = Filter.of(form)
        posters = form.get("what") == "posters"

        def record(session: Session, batch: Batch) -> None:
            audit.record(session, partner_id=admin.partner_id, action="posters" if posters else "invites",
                         now=utcnow(), object_kind="invites", object_ref=str(len(batch.lines)),
                         details=chosen.values)

        try:
            body, name = await run_in_threadpool(_invite_file, site, chosen.invite_selection(), posters, record)
        except DataError as exc:
            return pages.message(request, "invite_failed", status=400, admin=admin, reason=exc.key, **exc.params)
        kind = "application/zip" if posters else \
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
        return Response(body, media_type=kind, headers={"Content-Disposition": f'attachment; filename="{name}"',
                                                        "Cache-Control": "no-store"})

    return [Route("/partners", site.access.page(listing), methods=["GET"]),
            Route("/partners/invites", site.access.page(invites), methods=["POST"]),
            Route("/partners/{code}", site.access.page(partner_page), methods=["GET"]),
            Route("/partners/{code}/unbind", site.access.page(unbind_account), methods=["POST"])]


def _invite_file(site: Site, selection: Selection, posters: bool,
                 record: Callable[[Session, Batch], None]) -> tuple[bytes, str]:
    """Issue the invites (audited by `record` in their transaction) and make the file to download:
    the sheet (.xlsx), or the posters in a zip."""
    stamp = utcnow().strftime("%Y%m%d-%H%M")
    with tempfile.TemporaryDirectory(prefix="mianzi-invites-") as tmp:
        folder = Path(tmp)
        if posters:
            run = invite(site.settings, site.engine, selection, posters=folder / "posters", audit=record)
            buffer = io.BytesIO()
            with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
                for path in run.posters:
                    archive.write(path, path.name)
            return buffer.getvalue(), f"invite-posters-{stamp}.zip"
        run = invite(site.settings, site.engine, selection, out=folder / "invites.xlsx", audit=record)
        assert run.out is not None
        return run.out.read_bytes(), f"invites-{stamp}.xlsx"
