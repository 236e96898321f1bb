"""`mianzi contests …`: contests and standings."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from bot.cli.common import METRIC_HELP, JsonOption, _locale, fail, guarded, out, print_json, time_column

if TYPE_CHECKING:
    from models.rows import AnyContest
    from models.tables import Contest

contests_app = typer.Typer(no_args_is_help=True, help="Contests and standings.")


@contests_app.command("create")
def contests_create(
    name: str = typer.Option(..., "--name"),
    metric: str = typer.Option(..., "--metric", help=METRIC_HELP),
    scope: str = typer.Option("individual", "--scope", help="individual|team"),
    team_score: str = typer.Option("sum", "--team-score", help="sum|avg"),
    start: str = typer.Option(..., "--start", help="DATE or DATETIME (program time zone)"),
    end: str = typer.Option(..., "--end", help="DATE (inclusive) or DATETIME"),
    grace: str = typer.Option("0", "--grace", help="settlement grace for late data, e.g. 6h"),
    segment: str | None = typer.Option(None, "--segment",
                                         help="KEY=VALUE[,…]: region, city_tier, industry, size, team"),
    min_tenure_days: int | None = typer.Option(None, "--min-tenure-days"),
    min_score: str | None = typer.Option(None, "--min-score"),
    min_satisfaction: str | None = typer.Option(None, "--min-satisfaction"),
    prizes: str | None = typer.Option(None, "--prizes", help="RANK=POINTS[,…] e.g. 1=500,2=300,3=100"),
    tiers: str | None = typer.Option(None, "--tiers", help="NAME=THRESHOLD:POINTS[:REBATE%][,…]"),
    top: int = typer.Option(10, "--top", help="how many are named publicly"),
    recur: str = typer.Option("none", "--recur", help="none|weekly|monthly|quarterly"),
    min_ratings: int = typer.Option(3, "--min-ratings", help="an average (satisfaction): ratings needed to rank"),
    featured: bool = typer.Option(False, "--featured", help="shown first by 排行 / /rank"),
    json_out: JsonOption = False,
) -> None:
    """Create a contest."""

    from bot import context
    from bot.settings import get_settings
    from messages.render import t
    from models import contest_changes
    from models import contests as contest_ops
    from models.db import session_scope
    settings = get_settings()
    given = {"name": name, "metric": metric, "scope": scope, "team_score": team_score, "start": start, "end": end,
             "grace": grace, "segment": segment, "min_tenure_days": min_tenure_days, "min_score": min_score,
             "min_satisfaction": min_satisfaction, "prizes": prizes, "tiers": tiers, "top": top, "recur": recur,
             "min_ratings": min_ratings, "featured": featured}
    with guarded():
        spec = contest_changes.spec_from_options(given, settings.timezone)
        with session_scope(context.engine(settings)) as session:
            contest = contest_ops.create(session, spec)
    if json_out:
        print_json({"id": contest.id})
    else:
        out.print(t("cli.contest_created", _locale(), id=contest.id, name=contest.name), markup=False)


def _period_text(contest: AnyContest) -> str:
    """The period as the chat shows it, labelled with its zone when not the program's own."""

    from bot.settings import get_settings
    from messages.render import period_text, zone_name
    text = period_text(contest.start_at, contest.end_at, contest.timezone)
    return text if contest.timezone == get_settings().timezone else f"{text} ({zone_name(contest.timezone)})"


@contests_app.command("list")
def contests_list(json_out: JsonOption = False) -> None:
    """All contests with their status."""
    # Through the driver's own connection (`models.plain`): no SQLAlchemy, SQLModel or table
    # classes to import, so the answer comes in under half a second (issue 14).
    from rich.table import Table

    from bot import context
    from messages.render import t
    from models import plain
    from models.rules import status
    from models.values import utcnow

    loc = _locale()
    now = utcnow()
    with guarded(), context.plain_connection() as conn:
        rows = plain.contest_rows(conn=conn)
    if json_out:
        print_json([contest_summary(c, now) for c in rows])
        return
    if not rows:
        out.print(t("cli.no_contests", loc), markup=False)
        return
    table = Table(*(t(f"col.{k}", loc) for k in ("id", "name", "metric", "scope")), time_column(t("col.period", loc)),
                  t("col.status", loc))
    for c in rows:
        table.add_row(str(c.id), c.name, t(f"metric.{c.metric}", loc), t(f"scope.{c.scope}", loc),
                      _period_text(c), t(f"status.{status(c, now)}", loc))
    out.print(table)


def contest_summary(c: AnyContest, now: datetime) -> dict[str, Any]:
    from models.rules import status

    return {"id": c.id, "name": c.name, "metric": c.metric, "scope": c.scope, "team_score": c.team_score,
            "start": c.start_at.isoformat(), "end": c.end_at.isoformat(), "timezone": c.timezone,
            "grace_seconds": c.grace_seconds, "segment": c.segment, "min_tenure_days": c.min_tenure_days,
            "min_score": score_json(c.min_score), "min_satisfaction": score_json(c.min_satisfaction),
            "prizes": c.prizes, "tiers": [{**tier, "threshold": score_json(tier["threshold"])} for tier in c.tiers],
            "top": c.top_n, "recur": c.recur, "previous_id": c.previous_id, "min_ratings": c.min_ratings,
            "featured": c.featured, "status": status(c, now),
            "closed_at": c.closed_at.isoformat() if c.closed_at else None,
            "cancelled_at": c.cancelled_at.isoformat() if c.cancelled_at else None, "cancelled_by": c.cancelled_by}


def score_json(score: int | None) -> str | None:
    """Exact decimal text in the metric's unit (JSON numbers would go through float)."""

    from models.rules import score_to_decimal

    return None if score is None else str(score_to_decimal(score))


@contests_app.command("show")
def contests_show(contest_id: int = typer.Argument(..., metavar="ID"),
                  limit: int = typer.Option(20, "--limit", help="lines in the table (JSON has everyone)"),
                  json_out: JsonOption = False) -> None:
    """One contest and its live or frozen standings."""

    from bot import context
    from models import contest_changes, corrections, standings
    from models import contests as contest_ops
    from models.db import session_scope
    from models.values import utcnow

    loc = _locale()
    now = utcnow()
    with guarded(), session_scope(context.engine()) as session:
        contest = contest_ops.contest_by_id(session, contest_id=contest_id)
        if contest is None:
            fail("error.unknown_contest", value=contest_id)
        standings.ensure_fresh(session, contest)
        session.refresh(contest)
        lines = standings.all_lines(session, contest)
        partners = contest_ops.partner_codes(session=session)
        teams = contest_ops.team_codes(session=session)
        late = contest_ops.late_sales(session, contest)
        late_corrections = corrections.late_corrections(session, contest)
        changes = [{"action": c.action, "changes": c.changes, "by": c.by, "at": c.at.isoformat(),
                    "announced": c.announced} for c in contest_changes.history(session, contest_id)]
    doc = contest_summary(contest, now)
    doc["late_sales"] = late  # corrections to the closed period included
    doc["late_corrections"] = late_corrections
    doc["changes"] = changes
    doc["standings"] = [line_json(line, contest, partners, teams, loc) for line in lines if line.kind != "member"]
    if contest.scope == "team":
        by_team: dict[int | None, list[dict[str, Any]]] = {}
        for line in lines:
            if line.kind == "member":
                by_team.setdefault(line.team_id, []).append(line_json(line, contest, partners, teams, loc))
        for entry, line in zip(doc["standings"], [x for x in lines if x.kind != "member"], strict=True):
            entry["members"] = by_team.get(line.team_id, [])
    if json_out:
        print_json(doc)
        return
    _print_standings(contest, doc, [x for x in lines if x.kind != "member"], limit, loc)


def line_json(line: Any, contest: Contest, partners: dict[int, str], teams: dict[int, str], loc: str) -> dict[str, Any]:

    from messages.render import reason_text
    doc: dict[str, Any] = {}
    if line.kind == "team":
        doc["team"] = teams.get(line.team_id)
    else:
        doc["partner"] = partners.get(line.partner_id)
    doc.update({"score": score_json(line.score), "rank": line.rank, "tier": line.tier,
                "prize_points": line.prize_points, "rebate_pct": line.rebate_pct, "eligible": line.eligible,
                "reason": reason_text(line.reason, contest.metric, loc), "reason_code": line.reason.get("code"),
                "reached_at": line.reached_at.isoformat() if line.reached_at else None})
    return doc


def _print_standings(contest: Contest, doc: dict[str, Any], lines: list[Any], limit: int, loc: str) -> None:
    from rich.table import Table

    from messages.render import score_text, t
    out.print(f"#{contest.id} {contest.name} · {t(f'metric.{contest.metric}', loc)} · {_period_text(contest)} · "
              f"{t('status.' + doc['status'], loc)}", markup=False, highlight=False)
    table = Table(*(t(f"col.{k}", loc) for k in ("rank", "participant", "score", "tier", "prize", "reason")))
    for entry, line in zip(doc["standings"][:limit], lines[:limit], strict=True):
        who = entry.get("partner") or entry.get("team") or ""
        score = score_text(line.score, contest.metric, loc)
        table.add_row(str(entry["rank"] or "-"), who, score, entry["tier"] or "", str(entry["prize_points"] or ""),
                      entry["reason"])
    out.print(table)
    if doc["late_sales"]:
        out.print(t("cli.late_sales", loc, count=doc["late_sales"], corrections=doc["late_corrections"]),
                  markup=False)


@contests_app.command("close-due")
def contests_close_due(now_text: str | None = typer.Option(None, "--now", help="ISO-8601; default: now")) -> None:
    """Close every contest whose period plus grace has ended, and queue its announcements (idempotent).

    The scheduler's own close-and-announce (`scheduler.jobs.close_due`): a contest closed here is
    announced here, once, and a later scheduler tick finds nothing left to do.
    """

    from bot import context
    from bot.settings import get_settings
    from handlers.announcements import ImageConfig
    from messages.render import t
    from models.values import parse_datetime_local, utcnow, zone
    from scheduler import jobs

    settings = get_settings()
    loc = _locale()
    with guarded():
        now = parse_datetime_local(now_text, zone(settings.timezone)) if now_text else utcnow()
        engine = context.engine(settings)
        images = ImageConfig.configured(settings.media_dir, settings.cjk_font)
        closed_now = jobs.close_due(engine, now, settings.locale, images)
        for closed in closed_now:
            done = closed.outcome
            out.print(t("cli.closed", loc, id=closed.contest_id, name=done.contest.name, results=done.results,
                        points=done.points_entries, queued=closed.queued), markup=False)
            if done.next_contest is not None:
                out.print(t("cli.closed_next", loc, id=done.next_contest.id,
                            start=done.next_contest.start_at.astimezone(zone(settings.timezone)).date(),
                            end=_period_text(done.next_contest).split(" – ")[-1]), markup=False)
                if closed.missing_targets:
                    out.print(t("cli.targets_missing", loc, id=done.next_contest.id, count=len(closed.missing_targets),
                                codes=", ".join(closed.missing_targets)), markup=False)
        if not closed_now:
            out.print(t("cli.nothing_due", loc), markup=False)




@contests_app.command("edit")
def contests_edit(
    contest_id: int = typer.Argument(..., metavar="ID"),
    name: str | None = typer.Option(None, "--name"),
    metric: str | None = typer.Option(None, "--metric", help=METRIC_HELP),
    scope: str | None = typer.Option(None, "--scope"),
    team_score: str | None = typer.Option(None, "--team-score"),
    start: str | None = typer.Option(None, "--start"),
    end: str | None = typer.Option(None, "--end"),
    grace: str | None = typer.Option(None, "--grace"),
    segment: str | None = typer.Option(None, "--segment", help="empty: everyone"),
    min_tenure_days: str | None = typer.Option(None, "--min-tenure-days", help="empty: no rule"),
    min_score: str | None = typer.Option(None, "--min-score", help="empty: no rule"),
    min_satisfaction: str | None = typer.Option(None, "--min-satisfaction", help="empty: no rule"),
    min_ratings: int | None = typer.Option(None, "--min-ratings"),
    prizes: str | None = typer.Option(None, "--prizes", help="empty: no rank prizes"),
    tiers: str | None = typer.Option(None, "--tiers", help="empty: no tiers"),
    top: int | None = typer.Option(None, "--top"),
    recur: str | None = typer.Option(None, "--recur"),
    featured: bool | None = typer.Option(None, "--featured/--not-featured"),
    json_out: JsonOption = False,
) -> None:
    """Change a contest: any field before the start; name, grace, prizes, top N and featured while it runs."""

    from bot import context
    from bot.settings import get_settings
    from handlers import contest_changes as changing
    from messages.render import t
    from models import contest_changes
    from models.db import session_scope
    from models.values import utcnow, zone

    settings = get_settings()
    given = {"name": name, "metric": metric, "scope": scope, "team_score": team_score, "start": start, "end": end,
             "grace": grace, "segment": segment, "min_tenure_days": min_tenure_days, "min_score": min_score,
             "min_satisfaction": min_satisfaction, "min_ratings": min_ratings, "prizes": prizes, "tiers": tiers,
             "top": top, "recur": recur, "featured": featured}
    with guarded(), session_scope(context.engine(settings)) as session:
        contest = contest_changes.load(session, contest_id)
        fields = contest_changes.parse_changes(contest, given, zone(settings.timezone))
        change, queued = changing.edit(session, contest_id, fields, by="cli", now=utcnow())
        changed = list(change.record.changes)
    if json_out:
        print_json({"id": contest_id, "changed": changed, "queued": queued})
        return
    loc = _locale()
    out.print(t("cli.contest_edited", loc, id=contest_id, fields=[t(f"field.{f}", loc) for f in changed],
                queued=queued), markup=False)


@contests_app.command("cancel")
def contests_cancel(contest_id: int = typer.Argument(..., metavar="ID"),
                    announce: bool = typer.Option(False, "--announce", help="tell the participants it is off"),
                    json_out: JsonOption = False) -> None:
    """Cancel a contest created by mistake: it never closes, never pays; its row stays, for the record."""

    from bot import context
    from handlers import contest_changes as changing
    from messages.render import t
    from models.db import session_scope
    from models.values import utcnow

    with guarded(), session_scope(context.engine()) as session:
        change, queued = changing.cancel(session, contest_id, by="cli", now=utcnow(), announce=announce)
        name = change.contest.name
    if json_out:
        print_json({"id": contest_id, "status": "cancelled", "queued": queued})
        return
    out.print(t("cli.contest_cancelled", _locale(), id=contest_id, name=name, queued=queued), markup=False)


@contests_app.command("results")
def contests_results(contest_id: int = typer.Argument(..., metavar="ID"),
                     out_file: Path | None = typer.Option(None, "--out", help="results.xlsx or results.csv"),
                     json_out: JsonOption = False) -> None:
    """A closed contest's results for finance: score, rank, tier, prize points and the rebate in yuan."""
    from rich.table import Table

    from bot import context
    from handlers import results_sheet
    from messages.render import t
    from models import finance
    from models.db import session_scope

    loc = _locale()
    if out_file is not None and out_file.suffix.lower() not in (".xlsx", ".csv"):
        fail("error.results_out", value=str(out_file))
    with guarded(), session_scope(context.engine()) as session:
        done = finance.results(session, contest_id=contest_id)
        if out_file is not None:
            results_sheet.write(done, out_file, loc)
        rows = results_sheet.table(done, loc)
    money = finance.fen_text
    if json_out:
        print_json({"contest": {"id": contest_id, "name": done.contest.name, "metric": done.contest.metric,
                                "start": done.contest.start_at.isoformat(), "end": done.contest.end_at.isoformat()},
                    "rounding": "rebate = tier rebate % × revenue in the period, in fen, rounded half up",
                    "lines": [{"code": x.code, "name": x.name, "team": x.team, "eligible": x.eligible,
                               "score": score_json(x.score), "rank": x.rank, "tier": x.tier,
                               "prize_points": x.prize_points, "revenue": money(x.revenue_fen),
                               "rebate_pct": x.rebate_pct, "rebate": money(x.rebate_fen)} for x in done.lines],
                    "totals": {"participants": len(done.lines), "prize_points": done.prize_points,
                               "revenue": money(done.revenue_fen), "rebate": money(done.rebate_fen)}})
        return
    if out_file is not None:
        out.print(t("cli.results_written", loc, path=str(out_file), count=len(done.lines),
                    points=done.prize_points, rebate=money(done.rebate_fen)), markup=False)
        return
    table = Table(*(str(v) for v in rows[0]))
    for row in rows[1:]:
        table.add_row(*(str(v) for v in row))
    out.print(table)
    out.print(t("cli.results_rounding", loc), markup=False)
