"""The rewards store (积分兑换): catalog import, redemption requests, approval and rejection.

A redemption reserves both the points and one unit of stock when it is requested, so what a
partner was promised is never sold twice:
- the points by a `spent` ledger entry, written under the partner's lock (see `models.points`);
- the unit by `UPDATE rewarditem SET stock = stock - 1 WHERE id = … AND stock >= 1`: of two
  requests for the last unit one updates a row and the other updates none (and a CHECK
  constraint keeps `stock >= 0` even against a bug).
Every check that can refuse comes before the first write, so a refusal changes nothing even
when the caller commits (a chat reply is committed with its transaction).
Deciding is a conditional UPDATE on `status = 'pending'`, so approving and rejecting at the same
moment (two admins) decide once, and a rejection refunds once.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlmodel import Session, col

from models import points
from models.errors import DataError
from models.imports.records import Row
from models.imports.report import ImportRejected, ImportReport, RowError
from models.kinds import RedemptionStatus
from models.tables import Partner, Redemption, RewardItem

CATALOG_COLUMNS = ("sku", "name_zh", "name_en", "points", "stock", "active")
CATALOG_REQUIRED = ("sku", "name_zh", "points", "stock")
TRUE = ("1", "true", "yes", "y", "是", "上架")
FALSE = ("0", "false", "no", "n", "否", "下架")
MAX_POINTS = 10_000_000
MAX_STOCK = 1_000_000
MAX_NOTE = 500


# --- catalog ---------------------------------------------------------------------------------


def import_catalog(session: Session, rows: Iterable[Row], now: datetime) -> ImportReport:
    """Add or update items by SKU; a file with any bad row imports nothing.

    `stock` is the number available from now on (units reserved by pending redemptions are
    already out of it); items missing from the file are left as they are.
    """
    report = ImportReport()
    errors: list[RowError] = []
    parsed: list[dict[str, Any]] = []
    seen: dict[str, int] = {}
    for line, row in rows:
        report.rows += 1
        before = len(errors)
        values = _parse_item(row, line, errors)
        sku = values.get("sku")
        if sku:
            if sku.lower() in seen:
                errors.append(RowError(line, "row.duplicate_in_file", {"value": sku, "first": seen[sku.lower()]}))
            seen.setdefault(sku.lower(), line)
        if len(errors) == before:
            parsed.append(values)
    if errors:
        raise ImportRejected(errors)
    existing = {i.sku.lower(): i for i in session.execute(select(RewardItem)).scalars()}
    for values in parsed:
        item = existing.get(values["sku"].lower())
        if item is None:
            session.add(RewardItem(**values, updated_at=now))
            report.inserted += 1
        elif any(getattr(item, k) != v for k, v in values.items()):
            for k, v in values.items():
                setattr(item, k, v)
            item.updated_at = now
            report.updated += 1
        else:
            report.unchanged += 1
    session.flush()
    return report


def _parse_item(row: dict[str, str], line: int, errors: list[RowError]) -> dict[str, Any]:
    if "__invalid__" in row:
        errors.append(RowError(line, "row.not_an_object"))
        return {}
    values: dict[str, Any] = {}
    sku = row.get("sku", "")
    if not sku:
        errors.append(RowError(line, "row.missing_value", {"column": "sku"}))
    elif len(sku) > 64 or any(c.isspace() or c == ":" for c in sku):
        errors.append(RowError(line, "row.bad_code", {"value": sku[:40]}))
    else:
        values["sku"] = sku
    name_zh = row.get("name_zh", "")
    name_en = row.get("name_en", "") or name_zh
    for column, value in (("name_zh", name_zh), ("name_en", name_en)):
        if not value:
            errors.append(RowError(line, "row.missing_value", {"column": column}))
        elif len(value) > 200:
            errors.append(RowError(line, "row.too_long", {"column": column, "max": 200}))
    values["name_zh"], values["name_en"] = name_zh, name_en
    values["points"] = _int(row, "points", 1, MAX_POINTS, line, errors)
    values["stock"] = _int(row, "stock", 0, MAX_STOCK, line, errors)
    active = row.get("active", "").strip().lower()
    if active in TRUE or not active:
        values["active"] = True
    elif active in FALSE:
        values["active"] = False
    else:
        errors.append(RowError(line, "rewards.row_bad_active", {"value": active[:40]}))
    return values


def _int(row: dict[str, str], name: str, low: int, high: int, line: int, errors: list[RowError]) -> int | None:
    value = row.get(name, "")
    if not value:
        errors.append(RowError(line, "row.missing_value", {"column": name}))
        return None
    digits = value[1:] if value.startswith("-") else value
    if not digits.isascii() or not digits.isdigit():
        errors.append(RowError(line, "row.not_an_integer", {"column": name, "value": value[:40]}))
        return None
    number = int(value)
    if not low <= number <= high:
        errors.append(RowError(line, "row.out_of_range", {"column": name, "value": value[:40], "low": low,
                                                          "high": high}))
        return None
    return number


def items(session: Session, active_only: bool = True) -> list[RewardItem]:
    stmt = select(RewardItem).order_by(col(RewardItem.points), col(RewardItem.sku))
    if active_only:
        stmt = stmt.where(col(RewardItem.active).is_(True))
    return list(session.execute(stmt).scalars())


def item_by_sku(session: Session, sku: str) -> RewardItem | None:
    stmt = select(RewardItem).where(func.lower(col(RewardItem.sku)) == sku.strip().lower())
    return session.execute(stmt).scalars().first()


def name(item: RewardItem, locale: str) -> str:
    return item.name_en if locale == "en" else item.name_zh


# --- redemptions -----------------------------------------------------------------------------


def redeem(session: Session, partner_id: int, sku: str, now: datetime) -> tuple[Redemption, RewardItem]:
    """Reserve the points and a unit of stock; a pending redemption. Raises `DataError` and writes nothing.

    Refusals: `rewards.unknown_sku`, `rewards.inactive`, `rewards.out_of_stock`, `ledger.not_enough`.
    """
    item = item_by_sku(session, sku)
    if item is None:
        raise DataError("rewards.unknown_sku", value=sku[:40])
    if not item.active:
        raise DataError("rewards.inactive", sku=item.sku)
    points.lock_partner(session, partner_id)
    session.refresh(item)
    if item.stock < 1:
        raise DataError("rewards.out_of_stock", sku=item.sku)
    have = points.balance(session, partner_id)
    if have < item.points:
        raise points.NotEnoughPoints(have, item.points)
    taken = session.execute(update(RewardItem).where(col(RewardItem.id) == item.id, col(RewardItem.stock) >= 1,
                                                     col(RewardItem.active).is_(True))
                            .values(stock=col(RewardItem.stock) - 1))
    if taken.rowcount != 1:  # type: ignore[attr-defined]
        raise DataError("rewards.out_of_stock", sku=item.sku)
    redemption = Redemption(partner_id=partner_id, item_id=item.id, points=item.points,
                            status=RedemptionStatus.PENDING, created_at=now)
    session.add(redemption)
    session.flush()
    # The balance was read under the partner's lock, which this transaction still holds.
    points.write_entry(session, partner_id, -item.points, "spent",
                  {"code": "points.spent", "redemption_id": redemption.id, "sku": item.sku},
                  f"redemption:{redemption.id}:spent", now)
    session.refresh(item)
    return redemption, item


@dataclass(frozen=True)
class Decision:
    redemption: Redemption
    item: RewardItem
    partner: Partner


def approve(session: Session, redemption_id: int, by: int | None, now: datetime) -> Decision:
    return _decide(session, redemption_id, "approved", by, None, now)


def reject(session: Session, redemption_id: int, by: int | None, note: str | None, now: datetime) -> Decision:
    """Reject, give the unit back to the stock and refund the points (once)."""
    note = " ".join((note or "").split()) or None
    if note is not None and len(note) > MAX_NOTE:
        raise DataError("rewards.note_too_long", max=MAX_NOTE)
    return _decide(session, redemption_id, "rejected", by, note, now)


def _decide(session: Session, redemption_id: int, status: str, by: int | None, note: str | None,
            now: datetime) -> Decision:
    found = session.get(Redemption, redemption_id)
    if found is None:
        raise DataError("rewards.no_such_redemption", id=redemption_id)
    done = session.execute(update(Redemption).where(col(Redemption.id) == redemption_id,
                                                    col(Redemption.status) == RedemptionStatus.PENDING)
                           .values(status=status, decided_at=now, decided_by=by, note=note))
    if done.rowcount != 1:  # type: ignore[attr-defined]
        session.refresh(found)
        raise DataError("rewards.already_decided", id=redemption_id, status=found.status)
    session.refresh(found)
    if status == RedemptionStatus.REJECTED:
        session.execute(update(RewardItem).where(col(RewardItem.id) == found.item_id)
                        .values(stock=col(RewardItem.stock) + 1))
        points.credit(session, found.partner_id, found.points, "refunded",
                      {"code": "points.refunded", "redemption_id": found.id},
                      f"redemption:{found.id}:refund", now)
    item = session.get(RewardItem, found.item_id)
    partner = session.get(Partner, found.partner_id)
    assert item is not None and partner is not None
    session.refresh(item)
    return Decision(found, item, partner)


def redemptions(session: Session, status: str | None = None, partner_id: int | None = None,
                limit: int | None = None) -> list[tuple[Redemption, RewardItem, Partner]]:
    """Redemptions with their item and partner, oldest first (the order an admin works through)."""
    stmt = (select(Redemption, RewardItem, Partner).join(RewardItem, col(RewardItem.id) == Redemption.item_id)
            .join(Partner, col(Partner.id) == Redemption.partner_id).order_by(col(Redemption.created_at),
                                                                              col(Redemption.id)))
    if status is not None:
        stmt = stmt.where(col(Redemption.status) == status)
    if partner_id is not None:
        stmt = stmt.where(col(Redemption.partner_id) == partner_id)
    if limit is not None:
        stmt = stmt.limit(limit)
    return [(r, i, p) for r, i, p in session.execute(stmt).all()]


def pending_by_item(*, session: Session) -> dict[int, int]:
    """How many redemptions wait for a decision, per catalog item (items with none are absent)."""
    rows = session.execute(select(col(Redemption.item_id), func.count()).where(col(Redemption.status) == "pending")
                           .group_by(col(Redemption.item_id)))
    return {item_id: int(count) for item_id, count in rows}


def set_item(session: Session, *, sku: str, stock: int, active: bool, seen_stock: int, now: datetime) -> RewardItem:
    """An admin's edit of one item: the stock available from now on and whether it is on offer.

    `seen_stock` is the stock the admin was looking at: a redemption since then changed it, and the
    edit is refused (`rewards.stock_changed`) rather than give away a unit already promised.
    """
    item = item_by_sku(session, sku)
    if item is None:
        raise DataError("rewards.unknown_sku", value=sku[:40])
    if not 0 <= stock <= MAX_STOCK:
        raise DataError("rewards.bad_stock", value=stock, max=MAX_STOCK)
    done = session.execute(update(RewardItem).where(col(RewardItem.id) == item.id, col(RewardItem.stock) == seen_stock)
                           .values(stock=stock, active=active, updated_at=now))
    session.refresh(item)
    if done.rowcount != 1:  # type: ignore[attr-defined]
        raise DataError("rewards.stock_changed", sku=item.sku, seen=seen_stock, stock=item.stock)
    return item


def decided(session: Session, *, limit: int) -> list[tuple[Redemption, RewardItem, Partner]]:
    """The latest decisions (approved or rejected), newest first."""
    stmt = (select(Redemption, RewardItem, Partner).join(RewardItem, col(RewardItem.id) == Redemption.item_id)
            .join(Partner, col(Partner.id) == Redemption.partner_id)
            .where(col(Redemption.status) != RedemptionStatus.PENDING)
            .order_by(col(Redemption.decided_at).desc(), col(Redemption.id).desc()).limit(limit))
    return [(r, i, p) for r, i, p in session.execute(stmt).all()]


def pending_count(*, session: Session) -> int:
    return int(session.execute(select(func.count()).select_from(Redemption)
                               .where(col(Redemption.status) == RedemptionStatus.PENDING)).scalar_one())
