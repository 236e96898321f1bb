"""Correcting rows of a sales file (`reverses`): each checked against the sale it cancels, then written.

The same rules as `models.corrections.void`: the original is in the ledger or earlier in the file,
is not itself a reversal, is not reversed yet (in the ledger or the file), and is the same
partner's. What the row leaves empty comes from the original (the negatives of its amount, units
and margin; its moment, customer and rating); what it gives must be exactly that (a channel
manager types `-3000` or nothing), except occurred_at, which may move the correction.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select

from models.db import table_of
from models.imports.report import ImportReport, RowError
from models.imports.sale_rows import ReversalRow
from models.tables import Sale
from models.tallies import Tally
from models.values import as_utc


def write_reversals(conn: Connection, rows: list[tuple[int, str, ReversalRow]], known: dict[str, tuple[Any, ...]],
                    chunk_lines: dict[str, int], errors: list[RowError], report: ImportReport,
                    bounds: list[datetime], now: datetime, tally: Tally | None = None) -> None:
    """Write a chunk's correcting rows in file order, after its plain sales (`sales._write_sales`).

    `known` holds every stored id of the chunk with its comparable values (`sales.comparable`);
    `chunk_lines` the line of each sale this chunk inserted (an original on a later line is not
    "earlier in the file"). Each row written is added to `tally` with its sign (`models.tallies`)."""
    table = table_of(Sale)
    refs = {r.ref for _line, _id, r in rows}
    originals: dict[str, Any] = {o.ext_id: o for o in conn.execute(select(table).where(table.c.ext_id.in_(refs)))}
    ids = [o.id for o in originals.values()]
    done: dict[int, str] = {}  # original id → the id of the sale that reverses it
    if ids:
        done.update(conn.execute(select(table.c.reverses, table.c.ext_id).where(table.c.reverses.in_(ids))).all())
    for line, ext_id, row in rows:
        original = originals.get(row.ref)
        if original is None or chunk_lines.get(row.ref, 0) > line:
            errors.append(RowError(line, "row.reversal_unknown", {"value": row.ref[:40]}))
            continue
        values = _filled(row, original, line, errors)
        if values is None:
            continue
        stored = known.get(ext_id)
        if stored is not None:
            if stored == comparable(values):
                report.unchanged += 1
            else:
                errors.append(RowError(line, "row.conflicting_id", {"value": ext_id[:40], "first": None}))
            continue
        if original.reverses is not None:
            errors.append(RowError(line, "row.reversal_of_reversal", {"value": row.ref[:40]}))
        elif original.partner_id != row.partner_id:
            errors.append(RowError(line, "row.reversal_other_partner", {"value": row.ref[:40]}))
        elif original.id in done:
            errors.append(RowError(line, "row.reversal_again",
                                   {"value": row.ref[:40], "reversal": done[original.id][:40]}))
        else:
            inserted = conn.execute(table.insert().values(ext_id=ext_id, imported_at=now, **values))
            key = inserted.inserted_primary_key
            assert key is not None  # an INSERT of one row always has it
            new_id = key[0]
            report.inserted += 1
            done[original.id] = ext_id
            known[ext_id] = comparable(values)
            chunk_lines[ext_id] = line
            originals[ext_id] = conn.execute(select(table).where(table.c.id == new_id)).one()
            moment = as_utc(values["occurred_at"])
            bounds.extend((moment, moment))
            if tally is not None:
                tally.add([(values["partner_id"], moment, values["amount_fen"], values["units"], values["margin_fen"],
                            values["satisfaction"])], sign=-1)


def comparable(values: dict[str, Any]) -> tuple[Any, ...]:
    """A sale's stored content, as a re-imported row must match it (the moment in UTC)."""
    return (values["partner_id"], as_utc(values["occurred_at"]), values["amount_fen"], values["units"],
            values["margin_fen"], values["customer"], values["satisfaction"], values.get("reverses"),
            values.get("reason"))


def _filled(row: ReversalRow, original: Any, line: int, errors: list[RowError]) -> dict[str, Any] | None:
    """The reversal's values, each given one checked against the original's."""
    before = len(errors)

    def negated(name: str, given: int | None, value: int | None) -> int | None:
        expected = -value if value is not None else None
        if given is not None and given != expected:
            errors.append(RowError(line, "row.reversal_not_negative",
                                   {"column": name, "value": _shown(name, given), "expected": _shown(name, expected)}))
        return expected

    def same(name: str, given: Any, value: Any) -> Any:
        if given is not None and given != value:
            errors.append(RowError(line, "row.reversal_not_same",
                                   {"column": name, "value": str(given)[:40],
                                    "expected": "" if value is None else str(value)[:40]}))
        return value

    values = {"partner_id": row.partner_id, "occurred_at": row.occurred or original.occurred_at,
              "amount_fen": negated("amount", row.amount, original.amount_fen),
              "units": negated("units", row.units, original.units),
              "margin_fen": negated("margin", row.margin, original.margin_fen),
              "customer": same("customer", row.customer, original.customer),
              "satisfaction": same("satisfaction", row.satisfaction, original.satisfaction),
              "reverses": original.id, "reason": row.reason}
    return None if len(errors) != before else values


def _shown(name: str, value: int | None) -> str:
    """A value as the file would hold it: fen as yuan with two decimals; none as empty."""
    if value is None:
        return ""  # the message says "empty"
    if name == "units":
        return str(value)
    sign = "-" if value < 0 else ""
    return f"{sign}{abs(value) // 100}.{abs(value) % 100:02d}"
