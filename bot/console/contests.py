"""Contests in the console: the list, create (with the rules as dealers will read them, live), edit
and cancel by the CLI's rules, the live standings (every participant, paged in SQL), close now (the
scheduler's own close), the results of a closed contest with the finance download, and the links of
the meeting-room board (`bot.console.board`).

Every rule is the CLI's: a form becomes the options of `mianzi contests create|edit` (`options_of`),
parsed by `models.contest_changes`; changes go through `handlers.contest_changes` (announced when
the dealers' rules change); the close is `scheduler.jobs.close_contest`.
"""

from __future__ import annotations

import tempfile
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlmodel import Session
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from bot.console import MOUNT
from bot.console.paging import Paging
from bot.console.site import Site
from handlers import contest_changes as changing
from handlers import results_sheet, views
from handlers.announcements import ImageConfig, public_view
from handlers.refresh import refresh_contest
from messages.locales import LOCALES
from messages.render import reason_text, render, t
from models import audit, board_links, contest_changes, corrections, finance, roster, standings, team_chats
from models import contests as contest_ops
from models.errors import DataError
from models.rules import METRICS, RECURRENCES, SCOPES, TEAM_SCORES, score_to_decimal
from models.tables import Contest
from models.values import as_utc, utcnow, zone
from models.web_sessions import SignedIn
from scheduler.jobs import close_contest

PRIZE_ROWS = 5
TIER_ROWS = 4
SEGMENT_FIELDS = ("region", "city_tier", "industry", "size", "team")
GROUPS = ("running", "upcoming", "closed", "cancelled")
GROUP_OF = {"active": "running", "settling": "running", "upcoming": "upcoming", "closed": "closed",
            "cancelled": "cancelled"}


# --- the form: what an admin types, as the CLI's options -------------------------------------------


def options_of(form: FormData) -> dict[str, Any]:
    """The form's fields as `mianzi contests create|edit` options (text, as typed). A field the form
    did not send (disabled: it may not change any more) is absent, so an edit leaves it alone."""
    given: dict[str, Any] = {}

    def text(name: str) -> str | None:
        value = form.get(name)
        return value.strip() if isinstance(value, str) else None

    for name in ("name", "metric", "scope", "team_score", "recur", "min_tenure_days", "min_score",
                 "min_satisfaction"):
        if text(name) is not None:
            given[name] = text(name)
    for name in ("top", "min_ratings"):
        value = text(name)
        if value is not None:
            if not value.isdigit():
                raise DataError("error.bad_number", value=value)
            given[name] = int(value)
    for bound in ("start", "end"):
        day = text(f"{bound}_date")
        if day is not None:
            moment = text(f"{bound}_time")
            given[bound] = f"{day}T{moment}" if day and moment else day
    hours = text("grace_hours")
    if hours is not None:  # whole hours, or a duration as the CLI takes it (90m, 2d)
        given["grace"] = f"{hours}h" if hours.isdigit() and hours != "0" else (hours or "0")
    if "segment" in form:  # the segment's fields come together (a marker field)
        given["segment"] = ",".join(f"{key}={text('seg_' + key)}" for key in SEGMENT_FIELDS if text("seg_" + key))
    if "prizes" in form:
        pairs = [(text(f"prize_rank_{i}"), text(f"prize_points_{i}")) for i in range(PRIZE_ROWS)]
        given["prizes"] = ",".join(f"{rank}={points or 0}" for rank, points in pairs if rank)
    if "tiers" in form:
        tiers = []
        for i in range(TIER_ROWS):
            tier_name, threshold = text(f"tier_name_{i}"), text(f"tier_threshold_{i}")
            if not tier_name and not threshold:
                continue
            tier_points, rebate = text(f"tier_points_{i}") or "0", text(f"tier_rebate_{i}")
            tiers.append(f"{tier_name}={threshold}:{tier_points}" + (f":{rebate}" if rebate else ""))
        given["tiers"] = ",".join(tiers)
    if "featured_field" in form:
        given["featured"] = form.get("featured") == "1"
    return given


def values_of(contest: Contest | None, timezone: str) -> dict[str, Any]:
    """The form's fields filled from a contest (edit), or the defaults of `contests create`."""
    if contest is None:
        today = utcnow().astimezone(zone(timezone)).date()
        return {"name": "", "metric": "revenue", "scope": "individual", "team_score": "sum",
                "start_date": today.isoformat(), "start_time": "", "end_date": "", "end_time": "",
                "grace_hours": "0", "segment": {}, "min_tenure_days": "", "min_score": "", "min_satisfaction": "",
                "min_ratings": 3, "prizes": [], "tiers": [], "top": 10, "recur": "none", "featured": False}
    tz = zone(contest.timezone)
    start = as_utc(contest.start_at).astimezone(tz)
    end = as_utc(contest.end_at).astimezone(tz)
    end_midnight = end.hour == end.minute == end.second == 0
    shown_end = (end - timedelta(days=1)) if end_midnight else end

    def amount(value: int | None) -> str:
        return "" if value is None else str(score_to_decimal(value)).removesuffix(".00")

    return {"name": contest.name, "metric": contest.metric, "scope": contest.scope, "team_score": contest.team_score,
            "start_date": start.date().isoformat(),
            "start_time": "" if start.hour == start.minute == 0 else start.strftime("%H:%M"),
            "end_date": shown_end.date().isoformat(), "end_time": "" if end_midnight else end.strftime("%H:%M"),
            "grace_hours": _grace_text(contest.grace_seconds),
            "segment": contest.segment or {}, "min_tenure_days": contest.min_tenure_days or "",
            "min_score": amount(contest.min_score), "min_satisfaction": amount(contest.min_satisfaction),
            "min_ratings": contest.min_ratings, "prizes": contest.prizes,
            "tiers": [{**tier, "threshold": amount(tier["threshold"])} for tier in contest.tiers],
            "top": contest.top_n, "recur": contest.recur, "featured": contest.featured}


def _grace_text(seconds: int) -> str:
    """The grace as the form shows it: whole hours, else the CLI's duration (`90m`, `45s`)."""
    if seconds % 3600 == 0:
        return str(seconds // 3600)
    return f"{seconds // 60}m" if seconds % 60 == 0 else f"{seconds}s"


def _transient(spec: contest_ops.ContestSpec) -> Contest:
    """An unsaved contest of the spec: what the preview renders and counts (never added to a session)."""
    contest_ops.validate(spec)
    return Contest(name=spec.name.strip(), metric=spec.metric, scope=spec.scope, team_score=spec.team_score,
                   start_at=as_utc(spec.start_at), end_at=as_utc(spec.end_at), timezone=spec.timezone,
                   grace_seconds=spec.grace_seconds, segment=spec.segment or {}, min_tenure_days=spec.min_tenure_days,
                   min_score=spec.min_score, min_satisfaction=spec.min_satisfaction, prizes=spec.prizes or [],
                   tiers=spec.tiers or [], top_n=spec.top_n, recur=spec.recur, min_ratings=spec.min_ratings,
                   featured=spec.featured, created_at=utcnow())


def rules_texts(contest: Contest, now: datetime) -> dict[str, str]:
    """The rules as `比赛` / `/contests` shows them in chat, in each language (the same template)."""
    info = views.contest_info(contest, now)
    if contest.id is None:  # a preview's unsaved contest (the column's type says int: every row read has one)
        info["id"] = "…"  # type: ignore[unreachable]
    return {locale: render("contests", locale, contests=[info]) for locale in LOCALES}


# --- the routes ----------------------------------------------------------------------------------------


def routes(site: Site) -> list[Route]:
    pages = site.pages
    settings = site.settings

    def refuse(request: Request, admin: SignedIn, exc: DataError, status: int = 409) -> Response:
        return pages.message(request, "contests.refused", status=status, admin=admin,
                             text=t(exc.key, pages.locale(admin), **exc.params))

    def no_contest(request: Request, admin: SignedIn) -> Response:
        return pages.message(request, "contests.unknown", status=404, admin=admin,
                             id=request.path_params.get("contest", ""))

    def contest_id(request: Request) -> int | None:
        raw = str(request.path_params.get("contest", ""))
        return int(raw) if raw.isdigit() and len(raw) < 10 else None

    def find(session: Session, ident: int | None) -> Contest | None:
        """The contest of a page's id, or None for a missing or malformed one (both answer `no_contest`)."""
        return contest_ops.contest_by_id(session, contest_id=ident) if ident is not None else None

    def results_of(session: Session, ident: int | None) -> tuple[Contest, finance.Results] | DataError | None:
        """A contest's frozen results, the refusal of a contest without them (not closed yet), or None."""
        contest = find(session, ident)
        if contest is None:
            return None
        try:
            return contest, finance.results(session, contest_id=contest.id)
        except DataError as exc:
            return exc

    async def listing(request: Request, admin: SignedIn) -> Response:
        def read(session: Session) -> dict[str, Any]:
            now = utcnow()
            grouped: dict[str, list[dict[str, Any]]] = {group: [] for group in GROUPS}
            for contest in contest_ops.all_contests(session=session):
                state = contest_ops.status(contest, now)
                grouped[GROUP_OF[state]].append({"c": contest, "status": state})
            grouped["closed"].reverse()  # the latest first
            grouped["cancelled"].reverse()
            return {"groups": grouped}

        found = await site.run(read)
        return pages.render(request, "contests.html", admin=admin, **found, done=request.query_params.get("done"))

    def form_page(request: Request, admin: SignedIn, session: Session, *, contest: Contest | None,
                  values: dict[str, Any], status: int = 200, error: str | None = None) -> Response:
        locked = contest is not None and contest_ops.status(contest) != "upcoming"
        return pages.render(request, "contest_form.html", admin=admin, status=status, contest=contest,
                            v=values, locked=locked, editable_running=contest_changes.WHILE_RUNNING,
                            metrics=METRICS, scopes=SCOPES, team_scores=TEAM_SCORES, recurrences=RECURRENCES,
                            choices=roster.choices(session), prize_rows=PRIZE_ROWS, tier_rows=TIER_ROWS,
                            error=error, preview=_preview(session, contest, values_form=None))

    def _preview(session: Session, contest: Contest | None, values_form: FormData | None) -> dict[str, Any]:
        """The rules text and the participants' figures of the form as it stands (or of the contest)."""
        now = utcnow()
        try:
            if values_form is None:
                if contest is None:
                    return {"error": None, "texts": None, "figures": None}
                shown = contest
            else:
                given = options_of(values_form)
                if contest is not None:
                    changes = contest_changes.parse_changes(contest, given, zone(contest.timezone))
                    shown = _transient(replace(contest_changes.spec_of(contest), **changes))
                    shown.id = contest.id
                else:
                    shown = _transient(contest_changes.spec_from_options(given, settings.timezone))
            return {"error": None, "texts": rules_texts(shown, now),
                    "figures": standings.participant_figures(session, contest=shown), "contest": shown}
        except DataError as exc:
            return {"error": exc, "texts": None, "figures": None}

    async def new_form(request: Request, admin: SignedIn) -> Response:
        return await site.run(lambda s: form_page(request, admin, s, contest=None,
                                                  values=values_of(None, settings.timezone)))

    async def preview(request: Request, admin: SignedIn) -> Response:
        form = await request.form()
        raw = form.get("contest")
        ident = int(raw) if isinstance(raw, str) and raw.isdigit() else None

        def read(session: Session) -> dict[str, Any]:
            contest = find(session, ident)
            return _preview(session, contest, form)

        found = await site.run(read)
        return pages.render(request, "contest_preview.html", admin=admin, preview=found)

    async def create(request: Request, admin: SignedIn) -> Response:
        form = await request.form()

        def change(session: Session) -> int | Response:
            try:
                spec = contest_changes.spec_from_options(options_of(form), settings.timezone)
                contest = contest_ops.create(session, spec)
            except DataError as exc:
                session.rollback()
                return form_page(request, admin, session, contest=None, values=_refill(form, None, settings.timezone),
                                 status=400, error=t(exc.key, pages.locale(admin), **exc.params))
            audit_record(session, admin, "contest.create", contest.id, {"contests.name": contest.name})
            return contest.id

        done = await site.run(change)
        if isinstance(done, Response):
            return done
        return RedirectResponse(f"{MOUNT}/contests/{done}?done=created", status_code=303)

    async def contest_page(request: Request, admin: SignedIn) -> Response:
        ident = contest_id(request)
        paging = Paging.of(request)
        chosen = _line_filter(request)

        def read(session: Session) -> dict[str, Any] | None:
            contest = find(session, ident)
            if contest is None:
                return None
            now = utcnow()
            if contest.closed_at is None and contest.cancelled_at is None and contest.standings_dirty:
                refresh_contest(session, contest.id, now)  # as the chat's board does
                session.refresh(contest)
            return {"c": contest, "state": contest_ops.status(contest, now), **_board(session, contest, paging, chosen),
                    "rules": rules_texts(contest, now), "choices": roster.choices(session),
                    "links": board_links.of_contest(session, contest_id=contest.id),
                    "changes": contest_changes.history(session, contest.id)}

        found = await site.run(read)
        if found is None:
            return no_contest(request, admin)
        total = found["total"]
        locale, metric = pages.locale(admin), found["c"].metric
        return pages.render(request, "contest.html", admin=admin, **found, filters=chosen_values(request),
                            reason=lambda r: reason_text(r, metric, locale),
                            pager=paging.pager(total, request), done=request.query_params.get("done"),
                            queued=request.query_params.get("queued"), public_url=settings.public_url or "")

    def _board(session: Session, contest: Contest, paging: Paging, chosen: standings.LineFilter) -> dict[str, Any]:
        kind = "member" if contest.scope == "team" else "partner"
        rows, total = standings.lines_page(session, contest=contest, kind=kind, offset=paging.offset,
                                           limit=paging.size, chosen=chosen)
        above = standings.lines_above(session, contest=contest, kind=kind,
                                      positions=[r.position for r in rows if r.position is not None]) \
            if kind == "partner" else {}
        lines = [{"row": r, "note": standings.order_note(r, above.get(r.position)) if kind == "partner" else None}
                 for r in rows]
        race: list[dict[str, Any]] = []
        if contest.scope == "team":
            teams = standings.team_race(session, contest=contest)
            team_above = {r.position: r for r in teams if r.position is not None}
            race = [{"row": r, "note": standings.order_note(r, team_above.get((r.position or 0) - 1))} for r in teams]
        return {"lines": lines, "total": total, "race": race, "kind": kind, "metric": contest.metric,
                "tier_counts": standings.tier_counts_by_score(session, contest=contest),
                "participants": total if not chosen.any else standings.line_count(session, contest=contest, kind=kind)}

    async def edit_form(request: Request, admin: SignedIn) -> Response:
        ident = contest_id(request)

        def read(session: Session) -> Response:
            contest = find(session, ident)
            if contest is None:
                return no_contest(request, admin)
            state = contest_ops.status(contest)
            if state in ("closed", "cancelled"):
                key = "error.contest_cancelled" if state == "cancelled" else "error.edit_closed"
                return refuse(request, admin, DataError(key, id=contest.id))
            return form_page(request, admin, session, contest=contest, values=values_of(contest, contest.timezone))

        return await site.run(read)

    async def edit(request: Request, admin: SignedIn) -> Response:
        ident = contest_id(request)
        form = await request.form()

        def change(session: Session) -> Response:
            contest = find(session, ident)
            if contest is None:
                return no_contest(request, admin)
            try:
                fields = contest_changes.parse_changes(contest, options_of(form), zone(contest.timezone))
                done, queued = changing.edit(session, contest.id, fields, by=admin.code, now=utcnow())
            except DataError as exc:
                session.rollback()
                if exc.key in ("error.edit_closed", "error.contest_cancelled", "error.edit_running"):
                    return refuse(request, admin, exc)
                contest = find(session, ident)
                assert contest is not None
                return form_page(request, admin, session, contest=contest, status=400,
                                 values=_refill(form, contest, settings.timezone),
                                 error=t(exc.key, pages.locale(admin), **exc.params))
            audit_record(session, admin, "contest.edit", contest.id,
                         {"contests.fields": ", ".join(done.record.changes), "contests.queued": queued})
            return RedirectResponse(f"{MOUNT}/contests/{contest.id}?done=edited&queued={queued}", status_code=303)

        return await site.run(change)

    async def cancel(request: Request, admin: SignedIn) -> Response:
        ident = contest_id(request)
        form = await request.form()
        announce = form.get("announce") == "1"

        def change(session: Session) -> Response:
            contest = find(session, ident)
            if contest is None:
                return no_contest(request, admin)
            try:
                done, queued = changing.cancel(session, contest.id, by=admin.code, now=utcnow(), announce=announce)
            except DataError as exc:
                session.rollback()
                return refuse(request, admin, exc)
            audit_record(session, admin, "contest.cancel", contest.id,
                         {"contests.name": done.contest.name, "contests.queued": queued})
            return RedirectResponse(f"{MOUNT}/contests/{ident}?done=cancelled&queued={queued}", status_code=303)

        return await site.run(change)

    async def close_form(request: Request, admin: SignedIn) -> Response:
        ident = contest_id(request)

        def read(session: Session) -> Response:
            contest = find(session, ident)
            if contest is None:
                return no_contest(request, admin)
            refused = _not_closable(contest)
            if refused is not None:
                return refuse(request, admin, refused)
            now = utcnow()
            standings.ensure_fresh(session, contest)
            session.refresh(contest)
            public = public_view(session, contest, now)
            kind = "member" if contest.scope == "team" else "partner"
            return pages.render(request, "contest_close.html", admin=admin, c=contest,
                                post=render("winners_public", settings.locale, **public),
                                participants=standings.line_count(session, contest=contest, kind=kind),
                                groups=len(team_chats.linked_groups(session)), next_period=contest.recur != "none")

        return await site.run(read)

    async def close(request: Request, admin: SignedIn) -> Response:
        ident = contest_id(request)

        def check(session: Session) -> Response | None:
            contest = find(session, ident)
            if contest is None:
                return no_contest(request, admin)
            refused = _not_closable(contest)
            return refuse(request, admin, refused) if refused is not None else None

        refused = await site.run(check)
        if refused is not None or ident is None:
            return refused or no_contest(request, admin)
        images = ImageConfig.configured(settings.media_dir, settings.cjk_font)
        closed = await run_in_threadpool(close_contest, site.engine, ident, utcnow(), settings.locale, images)
        if closed is None:  # closed by the scheduler in between, or cancelled
            return refuse(request, admin, DataError("error.edit_closed", id=ident))

        def record(session: Session) -> None:
            audit_record(session, admin, "contest.close", ident,
                         {"contests.results": closed.outcome.results, "contests.queued": closed.queued})

        await site.run(record)
        return RedirectResponse(f"{MOUNT}/contests/{ident}/results?done=closed&queued={closed.queued}",
                                status_code=303)

    async def results_page(request: Request, admin: SignedIn) -> Response:
        ident = contest_id(request)
        paging = Paging.of(request)

        def read(session: Session) -> dict[str, Any] | DataError | None:
            found = results_of(session, ident)
            if found is None or isinstance(found, DataError):
                return found
            contest, done = found
            shown = done.lines[paging.offset:paging.offset + paging.size]
            return {"c": contest, "done": done, "shown": shown, "late": contest_ops.late_sales(session, contest),
                    "late_corrections": corrections.late_corrections(session, contest),
                    "winners": contest_ops.winners(session, contest_id=contest.id)}

        found = await site.run(read)
        if found is None:
            return no_contest(request, admin)
        if isinstance(found, DataError):
            return refuse(request, admin, found)
        locale = pages.locale(admin)
        metric = found["c"].metric
        return pages.render(request, "contest_results.html", admin=admin, **found,
                            pager=paging.pager(len(found["done"].lines), request),
                            reason=lambda r: reason_text(r, metric, locale),
                            done_flag=request.query_params.get("done"), queued=request.query_params.get("queued"))

    async def download(request: Request, admin: SignedIn) -> Response:
        ident = contest_id(request)
        suffix = ".csv" if request.query_params.get("format") == "csv" else ".xlsx"
        locale = pages.locale(admin)

        def make(session: Session) -> tuple[bytes, str] | DataError | None:
            found = results_of(session, ident)
            if found is None or isinstance(found, DataError):
                return found
            _contest, done = found
            with tempfile.TemporaryDirectory(prefix="mianzi-results-") as tmp:
                path = Path(tmp) / f"results{suffix}"
                results_sheet.write(done, path, locale)  # the file `mianzi contests results --out` writes
                return path.read_bytes(), f"contest-{ident}-results{suffix}"

        made = await site.run(make)
        if made is None:
            return no_contest(request, admin)
        if isinstance(made, DataError):
            return refuse(request, admin, made)
        body, name = made
        kind = "text/csv; charset=utf-8" if suffix == ".csv" else \
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
        return Response(body, media_type=kind, headers={"Content-Disposition": f'attachment; filename="{name}"',
                                                        "Cache-Control": "no-store"})

    async def board_create(request: Request, admin: SignedIn) -> Response:
        ident = contest_id(request)

        def change(session: Session) -> Response:
            contest = find(session, ident)
            if contest is None:
                return no_contest(request, admin)
            if contest.cancelled_at is not None:
                return refuse(request, admin, DataError("error.contest_cancelled", id=contest.id))
            link = board_links.create(session, contest_id=contest.id, by=admin.partner_id, now=utcnow())
            audit_record(session, admin, "contest.board", contest.id, {"contests.board": link.id})
            return RedirectResponse(f"{MOUNT}/contests/{contest.id}?done=board#boards", status_code=303)

        return await site.run(change)

    async def board_revoke(request: Request, admin: SignedIn) -> Response:
        ident = contest_id(request)
        raw = str(request.path_params.get("link", ""))

        def change(session: Session) -> Response:
            if ident is None or not raw.isdigit() or not board_links.revoke(
                    session, contest_id=ident, link_id=int(raw), now=utcnow()):
                return pages.message(request, "contests.no_board", status=404, admin=admin)
            audit_record(session, admin, "contest.unboard", ident, {"contests.board": int(raw)})
            return RedirectResponse(f"{MOUNT}/contests/{ident}?done=unboard#boards", status_code=303)

        return await site.run(change)

    page = site.access.page
    return [Route("/contests", page(listing), methods=["GET"]),
            Route("/contests", page(create), methods=["POST"]),
            Route("/contests/new", page(new_form), methods=["GET"]),
            Route("/contests/preview", page(preview), methods=["POST"]),
            Route("/contests/{contest}", page(contest_page), methods=["GET"]),
            Route("/contests/{contest}/edit", page(edit_form), methods=["GET"]),
            Route("/contests/{contest}/edit", page(edit), methods=["POST"]),
            Route("/contests/{contest}/cancel", page(cancel), methods=["POST"]),
            Route("/contests/{contest}/close", page(close_form), methods=["GET"]),
            Route("/contests/{contest}/close", page(close), methods=["POST"]),
            Route("/contests/{contest}/results", page(results_page), methods=["GET"]),
            Route("/contests/{contest}/results/download", page(download), methods=["GET"]),
            Route("/contests/{contest}/boards", page(board_create), methods=["POST"]),
            Route("/contests/{contest}/boards/{link}/revoke", page(board_revoke), methods=["POST"])]


def _not_closable(contest: Contest) -> DataError | None:
    """Close now settles a contest whose period has ended (before its grace is over); a running
    one would leave out the sales still to come, an upcoming one has none."""
    state = contest_ops.status(contest)
    if state == "settling":
        return None
    if state == "cancelled":
        return DataError("error.contest_cancelled", id=contest.id)
    if state == "closed":
        return DataError("error.edit_closed", id=contest.id)
    return DataError("console.contests.close_not_ended", id=contest.id)


def audit_record(session: Session, admin: SignedIn, action: str, contest_id: int, details: dict[str, Any]) -> None:
    audit.record(session, partner_id=admin.partner_id, action=action, now=utcnow(), object_kind="contests.contest",
                 object_ref=str(contest_id), details=details)


def _line_filter(request: Request) -> standings.LineFilter:
    values = chosen_values(request)
    tier = values.get("city_tier")
    return standings.LineFilter(team=values.get("team"), region=values.get("region"),
                                city_tier=int(tier) if tier else None, industry=values.get("industry"),
                                size=values.get("size"))


def chosen_values(request: Request) -> dict[str, str]:
    out: dict[str, str] = {}
    for name in ("team", "region", "city_tier", "industry", "size"):
        value = request.query_params.get(name, "").strip()[:64]
        if value and (name != "city_tier" or value in ("1", "2", "3")):
            out[name] = value
    return out


def _refill(form: FormData, contest: Contest | None, timezone: str) -> dict[str, Any]:
    """The form as it was sent (a refused create or edit shows it again, to fix), over the contest's
    own values for the fields it did not send."""
    values = values_of(contest, contest.timezone if contest else timezone)

    def text(name: str) -> str:
        value = form.get(name)
        return value if isinstance(value, str) else ""

    for name in ("name", "metric", "scope", "team_score", "start_date", "start_time", "end_date", "end_time",
                 "grace_hours", "min_tenure_days", "min_score", "min_satisfaction", "min_ratings", "top", "recur"):
        if name in form:
            values[name] = text(name)
    if "segment" in form:
        values["segment"] = {key: text("seg_" + key) for key in SEGMENT_FIELDS if text("seg_" + key)}
    if "prizes" in form:
        values["prizes"] = [{"rank": text(f"prize_rank_{i}"), "points": text(f"prize_points_{i}")}
                            for i in range(PRIZE_ROWS) if text(f"prize_rank_{i}")]
    if "tiers" in form:
        values["tiers"] = [{"name": text(f"tier_name_{i}"), "threshold": text(f"tier_threshold_{i}"),
                            "points": text(f"tier_points_{i}"), "rebate_pct": text(f"tier_rebate_{i}")}
                           for i in range(TIER_ROWS) if text(f"tier_name_{i}") or text(f"tier_threshold_{i}")]
    if "featured_field" in form:
        values["featured"] = form.get("featured") == "1"
    return values

