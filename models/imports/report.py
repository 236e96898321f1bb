"""What an import says back: its counts, or every bad row with its line and reason (nothing imported)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlmodel import Session

from models.errors import DataError
from models.standings import mark_open_contests_dirty
from models.tallies import Sums


@dataclass(frozen=True)
class RowError:
    line: int
    key: str
    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class ImportReport:
    rows: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    # A sales import's open contests' sums after it (`models.tallies.Tally.kept`), by contest id:
    # for the standings refresh of the same transaction.
    kept: dict[int, dict[int, Sums]] = field(default_factory=dict, repr=False)


class ImportRejected(DataError):
    """The batch had bad rows; nothing was imported. `count` is the number of bad rows (a row
    can have several errors)."""

    def __init__(self, errors: list[RowError]) -> None:
        self.errors = errors
        super().__init__("error.import_rejected", count=len(self.by_line()))

    def by_line(self) -> list[tuple[int, list[RowError]]]:
        """Each bad row once, in file order, with all of its errors."""
        rows: dict[int, list[RowError]] = {}
        for e in self.errors:
            rows.setdefault(e.line, []).append(e)
        return sorted(rows.items())


def reject_if_any(errors: list[RowError]) -> None:
    """Raise `ImportRejected` with the errors in file order, if there are any."""
    if errors:
        errors.sort(key=lambda e: e.line)
        raise ImportRejected(errors)


def changed(session: Session, report: ImportReport) -> ImportReport:
    """After adding or updating rows: if any changed, write them and invalidate the open contests' standings."""
    if report.inserted or report.updated:
        session.flush()
        mark_open_contests_dirty(session)
    return report
