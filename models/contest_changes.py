"""Correcting a contest: edits and cancellation, each logged (`ContestChange`), never a silent overwrite.

What may change when:

- before the start (`upcoming`): any field;
- while running (`active`, and `settling` between the end and the close): only the name, the
  settlement grace, the rank prizes, how many are named publicly (top N) and the featured mark —
  the rules the participants have been competing under (metric, period, segment, thresholds,
  tiers …) stay as they were announced;
- after the close, or once cancelled: nothing (the results are frozen and paid).

A cancelled contest never closes and never pays; its row stays, with who cancelled it and when.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlmodel import Session, col

from models import contests as contest_ops
from models.errors import DataError
from models.rules import parse_prizes, parse_score, parse_segment, parse_tiers
from models.tables import Contest, ContestChange
from models.values import as_utc, parse_duration, parse_period_bound, zone

EDITABLE = ("name", "metric", "scope", "team_score", "start_at", "end_at", "grace_seconds", "segment",
            "min_tenure_days", "min_score", "min_satisfaction", "min_ratings", "prizes", "tiers", "top_n",
            "recur", "featured")
WHILE_RUNNING = ("name", "grace_seconds", "prizes", "top_n", "featured")
NOT_SHOWN = ("featured",)  # not a rule: changing it is not announced to the participants


@dataclass
class Change:
    """A logged change and what it means for the participants."""

    record: ContestChange
    contest: Contest
    rules_changed: bool  # something the participants were shown changed: tell them


def spec_of(contest: Contest) -> contest_ops.ContestSpec:
    """The contest's fields as a spec (what `create` validated)."""
    names = {f.name for f in fields(contest_ops.ContestSpec)}
    return contest_ops.ContestSpec(**{name: getattr(contest, name) for name in names})


def _json(value: Any) -> Any:
    return as_utc(value).isoformat() if isinstance(value, datetime) else value


def _comparable(name: str, value: Any) -> Any:
    return as_utc(value) if isinstance(value, datetime) else value


def _editable(contest: Contest, now: datetime) -> str:
    """The contest's status, refused when nothing may change any more."""
    state = contest_ops.status(contest, now)
    if state == "cancelled":
        raise DataError("error.contest_cancelled", id=contest.id)
    if state == "closed":
        raise DataError("error.edit_closed", id=contest.id)
    return state


def load(session: Session, contest_id: int) -> Contest:
    contest: Contest | None = session.execute(select(Contest).where(col(Contest.id) == contest_id)
                                              .with_for_update()).scalars().first()
    if contest is None:
        raise DataError("error.unknown_contest", value=contest_id)
    return contest


def edit(session: Session, contest_id: int, changes: dict[str, Any], *, by: str, now: datetime) -> Change:
    """Apply `changes` (ContestSpec field → new value) to a contest, by the rules above, and log them.

    Values equal to the current ones are no change; nothing to change is an error. The whole
    contest is validated again as `create` would.
    """
    contest = load(session, contest_id)
    state = _editable(contest, now)
    unknown = [name for name in changes if name not in EDITABLE]
    if unknown:
        raise ValueError(f"not editable: {unknown}")
    diff = {name: value for name, value in changes.items()
            if _comparable(name, value) != _comparable(name, getattr(contest, name))}
    if not diff:
        raise DataError("error.edit_nothing", id=contest.id)
    if state != "upcoming":
        for name in diff:
            if name not in WHILE_RUNNING:
                raise DataError("error.edit_running", id=contest.id, field=name)
    spec = replace(spec_of(contest), **diff)
    contest_ops.validate(spec)
    log = {name: [_json(getattr(contest, name)), _json(value)] for name, value in diff.items()}
    for name, value in diff.items():
        if name == "name":
            value = value.strip()
        setattr(contest, name, as_utc(value) if isinstance(value, datetime) else value)
    contest.standings_dirty = True  # prizes, top N … decide the awards: the cache is rebuilt
    record = ContestChange(contest_id=contest.id, action="edit", changes=log, by=by, at=now)
    session.add_all([contest, record])
    session.flush()
    return Change(record, contest, any(name not in NOT_SHOWN for name in diff))


def cancel(session: Session, contest_id: int, *, by: str, now: datetime) -> Change:
    """Stop a contest created by mistake: it never closes and never pays, and its row stays."""
    contest = load(session, contest_id)
    state = contest_ops.status(contest, now)
    if state == "cancelled":
        raise DataError("error.contest_cancelled", id=contest.id)
    if state == "closed":
        raise DataError("error.cancel_closed", id=contest.id)
    contest.cancelled_at, contest.cancelled_by = now, by
    record = ContestChange(contest_id=contest.id, action="cancel",
                           changes={"status": [state, "cancelled"]}, by=by, at=now)
    session.add_all([contest, record])
    session.flush()
    return Change(record, contest, True)


def history(session: Session, contest_id: int) -> list[ContestChange]:
    """Every logged change of a contest, oldest first."""
    return list(session.execute(select(ContestChange).where(col(ContestChange.contest_id) == contest_id)
                                .order_by(col(ContestChange.at), col(ContestChange.id))).scalars())


def parse_changes(contest: Contest, given: dict[str, Any], tz: ZoneInfo) -> dict[str, Any]:
    """Changes as an admin types them (the `contests create` options; None: not given) to field values.

    Text options parse as at creation; an empty `--segment`, `--min-score`, `--min-satisfaction`,
    `--min-tenure-days`, `--prizes` or `--tiers` clears the rule. Thresholds are read in the unit
    of the metric the contest will have.
    """
    metric = given.get("metric") or contest.metric
    out: dict[str, Any] = {}
    plain = {"name": "name", "metric": "metric", "scope": "scope", "team_score": "team_score", "top": "top_n",
             "recur": "recur", "min_ratings": "min_ratings", "featured": "featured"}
    for option, field in plain.items():
        if given.get(option) is not None:
            out[field] = given[option]
    if given.get("start") is not None:
        out["start_at"] = parse_period_bound(given["start"], tz, is_end=False)
    if given.get("end") is not None:
        out["end_at"] = parse_period_bound(given["end"], tz, is_end=True)
    if given.get("grace") is not None:
        out["grace_seconds"] = parse_duration(given["grace"])
    if given.get("segment") is not None:
        out["segment"] = parse_segment(given["segment"])
    if given.get("min_tenure_days") is not None:
        text = str(given["min_tenure_days"]).strip()
        if text and not text.isdigit():
            raise DataError("error.bad_number", value=text)
        out["min_tenure_days"] = int(text) if text else None
    if given.get("min_score") is not None:
        out["min_score"] = parse_score(given["min_score"], metric) if given["min_score"].strip() else None
    if given.get("min_satisfaction") is not None:
        text = given["min_satisfaction"].strip()
        out["min_satisfaction"] = parse_score(text, "satisfaction") if text else None
    if given.get("prizes") is not None:
        out["prizes"] = parse_prizes(given["prizes"])
    if given.get("tiers") is not None:
        out["tiers"] = parse_tiers(given["tiers"], metric)
    return out


def spec_from_options(given: dict[str, Any], timezone: str) -> contest_ops.ContestSpec:
    """A new contest as an admin types it (`mianzi contests create`'s options, the console's form):
    text parsed as `parse_changes` reads it; `name`, `metric`, `start` and `end` are needed, the
    others default as the CLI's options do."""
    tz = zone(timezone)
    metric = str(given.get("metric") or "")
    tenure = given.get("min_tenure_days")
    tenure_text = "" if tenure is None else str(tenure).strip()
    if tenure_text and not tenure_text.isdigit():
        raise DataError("error.bad_number", value=tenure_text)
    min_score, min_satisfaction = (str(given.get(k) or "").strip() for k in ("min_score", "min_satisfaction"))
    for needed in ("start", "end"):
        if not str(given.get(needed) or "").strip():
            raise DataError("error.bad_datetime", value="")
    return contest_ops.ContestSpec(
        name=str(given.get("name") or ""), metric=metric, scope=given.get("scope") or "individual",
        team_score=given.get("team_score") or "sum",
        start_at=parse_period_bound(str(given["start"]), tz, is_end=False),
        end_at=parse_period_bound(str(given["end"]), tz, is_end=True), timezone=timezone,
        grace_seconds=parse_duration(str(given.get("grace") or "0")), segment=parse_segment(given.get("segment")),
        min_tenure_days=int(tenure_text) if tenure_text else None,
        min_score=parse_score(min_score, metric) if min_score else None,
        min_satisfaction=parse_score(min_satisfaction, "satisfaction") if min_satisfaction else None,
        prizes=parse_prizes(given.get("prizes")), tiers=parse_tiers(given.get("tiers"), metric),
        top_n=_whole(given.get("top"), 10), recur=given.get("recur") or "none",
        min_ratings=_whole(given.get("min_ratings"), 3),
        featured=bool(given.get("featured")))


def _whole(value: Any, default: int) -> int:
    """A whole number option (`--top 10`), typed or given; empty: the default."""
    text = "" if value is None else str(value).strip()
    if not text:
        return default
    if not text.isdigit():
        raise DataError("error.bad_number", value=text)
    return int(text)
