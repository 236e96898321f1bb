"""Sales targets from a file: one per partner and period, added or updated."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date

from sqlalchemy import select
from sqlmodel import Session

from models.imports.cells import check_text, money, parse_date
from models.imports.partners import find_partner, partner_ids
from models.imports.records import Row
from models.imports.report import ImportRejected, ImportReport, RowError, changed
from models.tables import MONTHLY_END, MONTHLY_START, Target

TARGET_COLUMNS = ("partner", "period_start", "period_end", "target")
MONTHLY_WORDS = ("monthly", "每月")  # a targets row's period_start for a recurring monthly amount


def import_targets(session: Session, rows: Iterable[Row]) -> ImportReport:
    """Add or update targets, one per partner and period."""
    report = ImportReport()
    errors: list[RowError] = []
    partners = partner_ids(session)
    parsed: dict[tuple[int, date, date], tuple[int, int]] = {}
    for line, row in rows:
        report.rows += 1
        before = len(errors)
        if "__invalid__" in row:
            errors.append(RowError(line, "row.not_an_object"))
            continue
        code = check_text(row, "partner", errors, line, required=True)
        partner_id = find_partner(partners, code) if code else None
        if code and partner_id is None:
            errors.append(RowError(line, "row.unknown_partner", {"value": code[:40]}))
        monthly = row.get("period_start", "").strip().lower() in MONTHLY_WORDS
        start: date | None
        end: date | None
        if monthly:  # a recurring monthly amount (`models.tables.Target.monthly`); period_end stays empty
            start, end = MONTHLY_START, MONTHLY_END
        else:
            start = parse_date(row, "period_start", errors, line, required=True)
            end = parse_date(row, "period_end", errors, line, required=True)
        if start and end and end < start:
            errors.append(RowError(line, "row.period_reversed", {"start": str(start), "end": str(end)}))
        target = money(row, "target", errors, line, required=True)
        if target == 0:
            errors.append(RowError(line, "row.zero_target"))
        if len(errors) == before and partner_id and start and end and target is not None:
            key = (partner_id, start, end)
            if key in parsed and parsed[key][0] != target:
                errors.append(RowError(line, "row.duplicate_in_file", {"value": code, "first": parsed[key][1]}))
            parsed[key] = (target, line)
    if errors:
        raise ImportRejected(errors)
    existing = {(t.partner_id, t.period_start, t.period_end): t for t in session.execute(select(Target)).scalars()}
    for key, (target, _line) in parsed.items():
        row_obj = existing.get(key)
        if row_obj is None:
            session.add(Target(partner_id=key[0], period_start=key[1], period_end=key[2], target_fen=target,
                               monthly=(key[1], key[2]) == (MONTHLY_START, MONTHLY_END)))
            report.inserted += 1
        elif row_obj.target_fen != target:
            row_obj.target_fen = target
            report.updated += 1
        else:
            report.unchanged += 1
    return changed(session, report)
