"""Partners (and their teams) from a file: add or update by code."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import select
from sqlmodel import Session, col

from models.imports.cells import check_text, parse_date
from models.imports.records import Row
from models.imports.report import ImportRejected, ImportReport, RowError, changed
from models.tables import ROLES, Partner, Team
from models.values import LOCALES, clean_name, locale_word, normal_code

PARTNER_COLUMNS = ("code", "name", "team", "region", "city_tier", "industry", "size", "joined_on", "role",
                   "locale")
# Values of the partners file as people type them (the English words are the stored ones).
ROLE_WORDS = {"经销商": "dealer", "队长": "captain", "管理员": "admin", "渠道经理": "admin"}
CITY_TIERS = {"1": 1, "2": 2, "3": 3, "一线": 1, "二线": 2, "三线": 3, "一线城市": 1, "二线城市": 2, "三线城市": 3}


def partner_ids(session: Session) -> dict[str, int]:
    """Partner ids by code, for the imports' lookups: each stored code, and its `normal_code` (a code
    stored before codes were normalised is found both ways). Look a typed code up with `find_partner`."""
    ids: dict[str, int] = {}
    for code, partner_id in session.execute(select(col(Partner.code), col(Partner.id))).all():
        ids[code] = partner_id
        ids.setdefault(normal_code(code), partner_id)
    return ids


def find_partner(partners: dict[str, int], code: str) -> int | None:
    return partners.get(code) or partners.get(normal_code(code))


def import_partners(session: Session, rows: Iterable[Row], default_locale: str = "zh") -> ImportReport:
    """Add or update partners (by code) and create their teams (by team code)."""
    report = ImportReport()
    errors: list[RowError] = []
    parsed: list[tuple[int, dict[str, Any]]] = []
    seen: dict[str, int] = {}
    for line, row in rows:
        report.rows += 1
        before = len(errors)
        values = _parse_partner(row, line, errors, default_locale)
        code = values.get("code")
        if code:
            if code in seen:
                errors.append(RowError(line, "row.duplicate_in_file", {"value": code, "first": seen[code]}))
            seen[code] = line
        if len(errors) == before:
            parsed.append((line, values))
    if errors:
        raise ImportRejected(errors)

    teams = {t.code: t for t in session.execute(select(Team)).scalars()}
    existing: dict[str, Partner] = {}
    for stored in session.execute(select(Partner)).scalars():
        existing.setdefault(normal_code(stored.code), stored)
    for _line, values in parsed:
        team_code = values.pop("team")
        team_id = None
        if team_code:
            team = teams.get(team_code)
            if team is None:
                team = Team(code=team_code, name=team_code)
                session.add(team)
                session.flush()
                teams[team_code] = team
            team_id = team.id
        values["team_id"] = team_id
        partner = existing.get(values["code"])
        if partner is None:
            session.add(Partner(**values))
            report.inserted += 1
        elif any(getattr(partner, k) != v for k, v in values.items()):
            for k, v in values.items():
                setattr(partner, k, v)
            report.updated += 1
        else:
            report.unchanged += 1
    return changed(session, report)


def _parse_partner(row: dict[str, str], line: int, errors: list[RowError], default_locale: str) -> dict[str, Any]:
    if "__invalid__" in row:
        errors.append(RowError(line, "row.not_an_object"))
        return {}
    # names are shown on public boards: no bidi overrides, zero-width characters or line breaks
    row = {**row, "name": clean_name(row.get("name", "")), "team": clean_name(row.get("team", ""))}
    values: dict[str, Any] = {
        "code": check_text(row, "code", errors, line, required=True),
        "name": check_text(row, "name", errors, line, required=True),
        "team": check_text(row, "team", errors, line),
        "region": check_text(row, "region", errors, line),
        "industry": check_text(row, "industry", errors, line),
        "size": check_text(row, "size", errors, line),
        "joined_on": parse_date(row, "joined_on", errors, line),
    }
    code = values["code"]
    if code:
        if len(code) > 64 or any(c.isspace() for c in code):
            errors.append(RowError(line, "row.bad_code", {"value": code[:40]}))
        values["code"] = normal_code(code)
    tier = row.get("city_tier", "")
    values["city_tier"] = None
    if tier:
        if tier in CITY_TIERS:
            values["city_tier"] = CITY_TIERS[tier]
        else:
            errors.append(RowError(line, "row.bad_city_tier", {"value": tier[:40]}))
    role = row.get("role") or "dealer"
    role = ROLE_WORDS.get(role, role.lower())
    if role not in ROLES:
        errors.append(RowError(line, "row.bad_role", {"value": role[:40]}))
    values["role"] = role
    locale = row.get("locale") or default_locale
    locale = locale_word(locale)
    if locale not in LOCALES:
        errors.append(RowError(line, "row.bad_locale", {"value": locale[:40]}))
    values["locale"] = locale
    return values
