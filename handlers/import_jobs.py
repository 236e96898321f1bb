"""Imports run in the background of the serving process: the console's upload page starts one and polls it.

`ImportJobs.start(kind, upload_id, mode)` queues a preview or a commit of an upload kept by
`handlers.uploads` and returns a job id at once; `status(job_id)` says where it is. The imports run
one at a time in one worker thread (SQLite has one writer; a preview takes the write lock too,
since it runs the real import before rolling back), never in the event loop: `start` and `status`
only touch memory and may be called from it.

Only one commit at a time: a commit asked for while another is queued or running is refused
(`error.import_commit_busy`); previews wait their turn.

The job table lives in this process's memory: a restart forgets every job (a commit that was
running is rolled back by the database, all or nothing), while the uploaded file stays kept (for a
day, `handlers.uploads`), so the page can start it again. The newest `KEEP_JOBS` finished jobs
(by start) are kept, older ones forgotten.
"""

from __future__ import annotations

import logging
import secrets
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import Engine

from handlers import imports
from handlers.uploads import open_upload, upload_exists
from models.errors import DataError
from models.imports.report import ImportRejected, RowError
from models.imports.run import FileReport, check_kind

log = logging.getLogger("mianzi.imports")

Mode = Literal["preview", "commit"]
State = Literal["queued", "running", "done", "failed"]
MODES: tuple[Mode, ...] = ("preview", "commit")
KEEP_JOBS = 50


@dataclass(frozen=True)
class JobStatus:
    """A job as it is now.

    - `queued`, `running`: `rows_done` so far, `total_rows` once the file is open (None while
      unknown: a CSV file's total counts its lines, so it is an estimate when a value holds one);
    - `done`: `report` holds the counts (for a preview: what the commit would do);
    - `failed`: `error_key`/`error_params`, a message key of `messages/*/strings.toml`; when the
      file had bad rows, the key is `error.import_rejected` and `bad_rows` holds each bad row once,
      in file order, with all of its reasons (`RowError.key`/`params`, message keys too).
    """

    id: str
    kind: str
    upload_id: str
    mode: Mode
    sheet: str | None
    state: State = "queued"
    rows_done: int = 0
    total_rows: int | None = None
    report: FileReport | None = None
    bad_rows: list[tuple[int, list[RowError]]] = field(default_factory=list)
    error_key: str | None = None
    error_params: dict[str, Any] = field(default_factory=dict)
    name: str | None = None  # the uploaded file's name, as the page shows it
    by: int | None = None  # who asked (an admin's partner id): a commit is written to the audit log

    @property
    def finished(self) -> bool:
        return self.state in ("done", "failed")

    def doc(self) -> dict[str, Any]:
        """The job as plain data (a JSON answer to a poll): message keys, not words."""
        return {"id": self.id, "kind": self.kind, "upload_id": self.upload_id, "mode": self.mode,
                "sheet": self.sheet, "state": self.state, "rows_done": self.rows_done,
                "total_rows": self.total_rows, "report": self.report.doc() if self.report else None,
                "bad_rows": [{"line": line, "reasons": [{"key": e.key, "params": e.params} for e in errors]}
                             for line, errors in self.bad_rows],
                "error": {"key": self.error_key, "params": self.error_params} if self.error_key else None}


class ImportJobs:
    """The serving process's import jobs (one instance per process, e.g. on the app's state)."""

    def __init__(self, engine: Engine, *, media_dir: str | Path, timezone: str, default_locale: str) -> None:
        self.engine = engine
        self.media_dir = media_dir
        self.timezone = timezone
        self.default_locale = default_locale
        self._jobs: dict[str, JobStatus] = {}
        self._lock = threading.Lock()
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mianzi-import")

    def start(self, kind: str, upload_id: str, mode: str, *, sheet: str | None = None, name: str | None = None,
              by: int | None = None) -> str:
        """Queue a preview or a commit of upload `upload_id` as `kind`; the job's id.

        Raises `DataError`: `error.import_kind` (not partners|targets|sales|catalog),
        `error.import_mode` (not preview|commit), `error.upload_unknown` (no such upload),
        `error.import_commit_busy` (a commit is queued or running)."""
        check_kind(kind)
        chosen = _mode(mode)
        if not upload_exists(self.media_dir, upload_id):
            raise DataError("error.upload_unknown")
        job = JobStatus(id=secrets.token_hex(16), kind=kind, upload_id=upload_id.lower(), mode=chosen, sheet=sheet,
                        name=name, by=by)
        with self._lock:
            if chosen == "commit" and any(j.mode == "commit" and not j.finished for j in self._jobs.values()):
                raise DataError("error.import_commit_busy")
            self._jobs[job.id] = job
            self._forget_old()
        self._worker.submit(self._run, job.id)
        return job.id

    def status(self, job_id: str) -> JobStatus | None:
        """The job as it is now, or None for a job this process does not know (never started, or forgotten)."""
        with self._lock:
            return self._jobs.get(job_id)

    def close(self, wait: bool = True) -> None:
        """No more jobs; queued ones are dropped, a running one is let finish (awaited when `wait`:
        call it from a thread, not the event loop)."""
        self._worker.shutdown(wait=wait, cancel_futures=True)

    # --- in the worker thread ---------------------------------------------------------------------

    def _set(self, job_id: str, **changes: Any) -> JobStatus:
        with self._lock:
            job = self._jobs[job_id] = replace(self._jobs[job_id], **changes)
            return job

    def _run(self, job_id: str) -> None:
        job = self._set(job_id, state="running")

        def progress(done: int, total: int | None) -> None:
            self._set(job_id, rows_done=done, total_rows=total)

        try:
            with open_upload(self.media_dir, job.upload_id) as stream:
                if job.mode == "commit":
                    report = imports.commit(self.engine, job.kind, stream, sheet=job.sheet, timezone=self.timezone,
                                            default_locale=self.default_locale, progress=progress, by=job.by,
                                            name=job.name)
                else:
                    report = imports.preview(self.engine, job.kind, stream, sheet=job.sheet, timezone=self.timezone,
                                             default_locale=self.default_locale, progress=progress)
        except ImportRejected as rejected:
            self._set(job_id, state="failed", bad_rows=rejected.by_line(), error_key=rejected.key,
                      error_params=rejected.params)
        except DataError as exc:
            self._set(job_id, state="failed", error_key=exc.key, error_params=exc.params)
        except Exception as exc:  # the database's own errors (locked, full, gone): logged, one clear key
            log.exception("import job %s (%s %s of %s) failed", job_id, job.mode, job.kind, job.upload_id)
            self._set(job_id, state="failed", error_key="error.import_failed",
                      error_params={"detail": (str(getattr(exc, "orig", None) or exc).splitlines() or [""])[0][:200]})
        else:
            self._set(job_id, state="done", report=report, rows_done=report.rows, total_rows=report.rows)

    def _forget_old(self) -> None:
        """Keep the newest `KEEP_JOBS` finished jobs (and every unfinished one); the lock is held."""
        finished = [job_id for job_id, job in self._jobs.items() if job.finished]
        for job_id in finished[:-KEEP_JOBS] if len(finished) > KEEP_JOBS else []:
            del self._jobs[job_id]


def _mode(mode: str) -> Mode:
    for known in MODES:
        if mode == known:
            return known
    raise DataError("error.import_mode", value=mode)
