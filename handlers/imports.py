"""Imports of table files: into a transaction (the CLI), as a preview (rolled back), or committed.

One mechanism for the CLI's `partners|targets|sales|rewards import FILE` and the console's upload
page: `models.imports.run.run_import` reads and imports the file, this module decides what
happens to the transaction and refreshes the standings a sales import made stale.

- `import_file(session, …)`: in the caller's transaction (the CLI's `database()`), not committed;
- `preview(engine, …)`: the same run in a transaction that is always rolled back, so its counts
  are exactly what `commit` of the same bytes would do now; nothing is stored;
- `commit(engine, …)`: the same run, committed: all or nothing.

Each raises `ImportRejected` (every bad row: `by_line()`) or `DataError` (a bad file). The
console's uploads are kept by `handlers.uploads`, and run in the background by `handlers.import_jobs`.
"""

from __future__ import annotations

from datetime import datetime
from typing import BinaryIO

from sqlalchemy import Engine
from sqlmodel import Session

from handlers.refresh import refresh_dirty
from models import audit
from models.db import session_scope
from models.imports.run import FileProgress, FileReport, run_import
from models.values import utcnow


def import_file(session: Session, kind: str, stream: BinaryIO, *, sheet: str | None = None, timezone: str,
                default_locale: str, progress: FileProgress | None = None,
                now: datetime | None = None) -> FileReport:
    """Import `stream` as `kind` (`partners|targets|sales|catalog`) in the session's transaction
    (the caller commits); after sales, the open contests' stale standings are rebuilt in it too."""
    report = run_import(session, kind, stream, sheet=sheet, timezone=timezone, default_locale=default_locale,
                        progress=progress, now=now)
    if report.kind == "sales":
        refresh_dirty(session, now, report.kept)
    return report


def preview(engine: Engine, kind: str, stream: BinaryIO, *, sheet: str | None = None, timezone: str,
            default_locale: str, progress: FileProgress | None = None, now: datetime | None = None) -> FileReport:
    """What importing `stream` would do, with nothing stored: the import run in a transaction that
    is then rolled back (standings are not refreshed: they do not change the counts)."""
    with Session(engine, expire_on_commit=False) as session:
        try:
            return run_import(session, kind, stream, sheet=sheet, timezone=timezone,
                              default_locale=default_locale, progress=progress, now=now, keep=False)
        finally:
            session.rollback()


def commit(engine: Engine, kind: str, stream: BinaryIO, *, sheet: str | None = None, timezone: str,
           default_locale: str, progress: FileProgress | None = None, now: datetime | None = None,
           by: int | None = None, name: str | None = None) -> FileReport:
    """Import `stream` for real in one transaction of its own: every row, or (on any error) none.
    With `by` (an admin's partner id, from the console), the import is written to the audit log in
    that same transaction, under the file's `name`."""
    with session_scope(engine) as session:
        report = import_file(session, kind, stream, sheet=sheet, timezone=timezone, default_locale=default_locale,
                             progress=progress, now=now)
        if by is not None:
            details = {k: v for k, v in report.doc().items() if k != "kind" and v is not None}
            audit.record(session, partner_id=by, action="import", now=now or utcnow(), object_kind=kind,
                         object_ref=name, details=details)
        return report
