"""Trainings and feedback: create a training (as `mianzi trainings create`: `models.trainings.create`),
its sign-ups and attendance (`models.trainings.attendance`), the check-in code large and as a QR code
for the room's screen (`messages.qrcodes.qr_png`, served as a PNG); and the feedback surveys'
averages and spread per contest and training as charts, with their comments (`models.feedback.report`,
as `mianzi feedback report`)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlmodel import Session
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from bot.console import MOUNT
from bot.console.site import Site
from messages.qrcodes import qr_png
from messages.render import t
from models import audiences, audit, feedback, trainings
from models.errors import DataError
from models.partners import partner_labels
from models.rules import SEGMENT_KEYS, segment_of
from models.tables import Training
from models.values import parse_duration, parse_period_bound, utcnow, zone
from models.web_sessions import SignedIn

FIELDS = ("title", "start", "duration", "place", "points", "code", *SEGMENT_KEYS)
QR_PIXELS = 720


@dataclass(frozen=True)
class NewTraining:
    """The create form as typed (each value kept, to show it again with the reason it was refused)."""

    values: dict[str, str]

    @classmethod
    def of(cls, form: FormData | None) -> NewTraining:
        values = {"duration": "90m", "points": "0"}
        if form is not None:
            for name in FIELDS:
                value = form.get(name)
                values[name] = value.strip()[:500] if isinstance(value, str) else ""
        return cls(values)

    def spec(self, timezone: str) -> trainings.TrainingSpec:
        v = self.values
        if not v.get("start"):
            raise DataError("console.trainings.start_missing")
        points = v.get("points") or "0"
        if not points.isdigit():
            raise DataError("training.bad_points", max=trainings.MAX_POINTS)
        segment = segment_of([(k, v[k]) for k in SEGMENT_KEYS if v.get(k)], allow_role=True)
        return trainings.TrainingSpec(title=v.get("title", ""), place=v.get("place", ""),
                                      start_at=parse_period_bound(v["start"], zone(timezone), is_end=False),
                                      duration_seconds=parse_duration(v.get("duration") or "90m"),
                                      segment=segment, points=int(points), code=v.get("code") or None,
                                      timezone=timezone)


def routes(site: Site) -> list[Route]:
    pages, settings = site.pages, site.settings

    async def listing(request: Request, admin: SignedIn, *, form: NewTraining | None = None, status: int = 200,
                      error: str | None = None) -> Response:
        def read(session: Session) -> dict[str, Any]:
            rows = trainings.all_trainings(session=session)
            return {"rows": rows[::-1], "counts": trainings.signup_counts(session=session),
                    "choices": audiences.segment_choices(session=session)}

        found = await site.run(read)
        return pages.render(request, "trainings.html", admin=admin, status=status, **found, now=utcnow(),
                            form=form or NewTraining.of(None), error=error, end_at=trainings.end_at)

    async def overview(request: Request, admin: SignedIn) -> Response:
        return await listing(request, admin)

    async def create(request: Request, admin: SignedIn) -> Response:
        form = NewTraining.of(await request.form())
        now = utcnow()

        def change(session: Session) -> int:
            item = trainings.create(session, form.spec(settings.timezone), now)
            audit.record(session, partner_id=admin.partner_id, action="ops.training", now=now,
                         object_kind="ops.training", object_ref=str(item.id),
                         details={"ops.title": item.title, "ops.start": form.values["start"],
                                  "ops.code": item.checkin_code, **item.segment})
            return item.id

        try:
            ident = await site.run(change)
        except DataError as exc:
            return await listing(request, admin, form=form, status=400,
                                 error=t(exc.key, pages.locale(admin), **exc.params))
        return RedirectResponse(f"{MOUNT}/trainings/{ident}?done=created", status_code=303)

    def _found(session: Session, request: Request) -> Training | None:
        raw = request.path_params["ident"]
        ident = int(raw) if raw.isdigit() and 0 < int(raw) < 2**31 else None
        return trainings.training_by_id(session, training_id=ident) if ident is not None else None

    async def show(request: Request, admin: SignedIn) -> Response:
        def read(session: Session) -> dict[str, Any] | None:
            item = _found(session, request)
            if item is None:
                return None
            people = trainings.attendance(session, item.id)
            joined = [p for p in people if not p[0].walk_in]
            came = [p for p in people if p[0].attended_at is not None]
            rated = feedback.report(session, subject="training", subject_id=item.id)
            return {"item": item, "people": people, "joined": len(joined), "came": len(came),
                    "walk_ins": sum(1 for s, _p in people if s.walk_in),
                    "no_shows": sum(1 for s, _p in joined if s.attended_at is None),
                    "end": trainings.end_at(item), "closes": trainings.checkin_closes(item),
                    "summary": rated[0] if rated else None}

        found = await site.run(read)
        if found is None:
            return pages.message(request, "ops.no_training", status=404, admin=admin,
                                 id=request.path_params["ident"][:20])
        screen = request.url.path.endswith("/screen")
        return pages.render(request, "training_screen.html" if screen else "training.html", admin=admin, **found,
                            now=utcnow(), done=request.query_params.get("done") == "created")

    async def qr(request: Request, admin: SignedIn) -> Response:
        found = await site.run(lambda session: _found(session, request))
        if found is None:
            return pages.message(request, "ops.no_training", status=404, admin=admin,
                                 id=request.path_params["ident"][:20])
        text = t("console.trainings.qr_text", pages.locale(admin), code=found.checkin_code)
        png = await run_in_threadpool(qr_png, text, QR_PIXELS)
        return Response(png, media_type="image/png", headers={"Cache-Control": "no-store"})

    async def feedback_page(request: Request, admin: SignedIn) -> Response:
        def read(session: Session) -> dict[str, Any]:
            summaries = feedback.report(session)
            titles = feedback.subject_titles(session, summaries=summaries)
            ids = {c["partner_id"] for s in summaries for c in s.comments}
            return {"summaries": summaries, "titles": titles, "who": partner_labels(session, ids=ids)}

        found = await site.run(read)
        locale = pages.locale(admin)
        stars = json.dumps([t("console.feedback.stars", locale, n=n) for n in feedback.RATINGS], ensure_ascii=False)
        charts = {(s.subject, s.subject_id): json.dumps([s.counts[n] for n in feedback.RATINGS])
                  for s in found["summaries"]}
        return pages.render(request, "feedback.html", admin=admin, **found, stars=stars, charts=charts)

    return [Route("/trainings", site.access.page(overview), methods=["GET"]),
            Route("/trainings", site.access.page(create), methods=["POST"]),
            Route("/trainings/{ident}", site.access.page(show), methods=["GET"]),
            Route("/trainings/{ident}/screen", site.access.page(show), methods=["GET"]),
            Route("/trainings/{ident}/qr.png", site.access.page(qr), methods=["GET"]),
            Route("/feedback", site.access.page(feedback_page), methods=["GET"])]
