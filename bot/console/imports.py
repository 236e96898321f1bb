"""Imports by upload: a file (CSV in any encoding the CLI reads, or .xlsx) is kept, previewed in the
background (the real import, rolled back: exact counts, or every bad row), and on "Import" that same
file is committed, all or nothing. The job page follows a long import with htmx, a poll a second."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from bot.console import MOUNT
from bot.console.site import Site
from handlers.import_jobs import ImportJobs, JobStatus
from handlers.uploads import save_upload
from models.errors import DataError
from models.imports.run import KINDS, REQUIRED
from models.web_sessions import SignedIn

SHOWN_BAD_ROWS = 200  # a file with more bad rows shows these and says how many there are in all


def routes(site: Site, jobs: ImportJobs) -> list[Route]:
    pages = site.pages

    def form_page(request: Request, admin: SignedIn, *, status: int = 200, error: DataError | None = None,
                  kind: str = "sales") -> Response:
        return pages.render(request, "imports.html", admin=admin, status=status, kinds=KINDS, required=REQUIRED,
                            chosen=kind, error=error)

    async def upload_form(request: Request, admin: SignedIn) -> Response:
        kind = request.query_params.get("kind", "sales")
        return form_page(request, admin, kind=kind if kind in KINDS else "sales")

    async def upload(request: Request, admin: SignedIn) -> Response:
        form = await request.form()
        kind, file, sheet = form.get("kind"), form.get("file"), form.get("sheet")
        chosen = kind if isinstance(kind, str) and kind in KINDS else "sales"
        if not isinstance(file, UploadFile) or not file.filename:
            return form_page(request, admin, status=400, error=DataError("console.imports.no_file"), kind=chosen)
        data = await file.read()
        name = file.filename[:200]
        if not data:
            return form_page(request, admin, status=400, error=DataError("console.imports.empty_file"), kind=chosen)
        named = sheet.strip() if isinstance(sheet, str) and sheet.strip() else None
        try:
            upload_id = await run_in_threadpool(save_upload, site.settings.media_dir, data)
            job = jobs.start(chosen, upload_id, "preview", sheet=named, name=name)
        except DataError as exc:
            return form_page(request, admin, status=400, error=exc, kind=chosen)
        return RedirectResponse(f"{MOUNT}/imports/jobs/{job}", status_code=303)

    async def job_page(request: Request, admin: SignedIn) -> Response:
        job = jobs.status(request.path_params["job"])
        if job is None:
            return pages.message(request, "no_job", status=404, admin=admin)
        fragment = request.headers.get("hx-request") == "true"
        return pages.render(request, "import_job_part.html" if fragment else "import_job.html", admin=admin,
                            job=job, shown=job.bad_rows[:SHOWN_BAD_ROWS], percent=_percent(job))

    async def commit(request: Request, admin: SignedIn) -> Response:
        preview = jobs.status(request.path_params["job"])
        if preview is None:
            return pages.message(request, "no_job", status=404, admin=admin)
        if preview.mode != "preview" or preview.state != "done":
            return pages.message(request, "not_previewed", status=409, admin=admin)
        try:
            job = jobs.start(preview.kind, preview.upload_id, "commit", sheet=preview.sheet, name=preview.name,
                             by=admin.partner_id)
        except DataError as exc:
            return pages.message(request, "import_refused", status=409, admin=admin, reason=exc.key, **exc.params)
        return RedirectResponse(f"{MOUNT}/imports/jobs/{job}", status_code=303)

    return [Route("/imports", site.access.page(upload_form), methods=["GET"]),
            Route("/imports", site.access.page(upload), methods=["POST"]),
            Route("/imports/jobs/{job}", site.access.page(job_page), methods=["GET"]),
            Route("/imports/jobs/{job}/commit", site.access.page(commit), methods=["POST"])]


def _percent(job: JobStatus) -> int | None:
    if job.finished:
        return 100
    if not job.total_rows:
        return None
    return min(99, job.rows_done * 100 // job.total_rows)

