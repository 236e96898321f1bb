"""The `mianzi` command line (DESIGN §4). Words come from `messages/`; rules from `models/`."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any, NoReturn

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table
from sqlalchemy.exc import SQLAlchemyError

from bot import context
from bot.settings import Settings, get_settings
from handlers.refresh import refresh_dirty
from messages.render import local_time, number, period_text, reason_text, score_text, signed, t, zone_name
from models import contests as contest_ops
from models import standings
from models.csvfile import CsvRows, count_lines, open_table
from models.db import session_scope
from models.errors import DataError
from models.identities import new_invite
from models.imports.partners import PARTNER_COLUMNS, import_partners
from models.imports.records import rows_from_csv
from models.imports.report import ImportRejected, ImportReport
from models.imports.sale_rows import SALE_COLUMNS, SALE_REQUIRED
from models.imports.sales import import_sales
from models.imports.targets import TARGET_COLUMNS, import_targets
from models.rules import parse_prizes, parse_score, parse_segment, parse_tiers
from models.tables import Contest, Partner, Team
from models.values import parse_datetime_local, parse_duration, parse_period_bound, utcnow, zone

METRIC_HELP = "revenue|units|orders|new_customers|margin|attainment|satisfaction"

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Mianzi: partner engagement for channel programs.")
db_app = typer.Typer(no_args_is_help=True, help="Database schema.")
partners_app = typer.Typer(no_args_is_help=True, help="Partners and teams.")
targets_app = typer.Typer(no_args_is_help=True, help="Targets per partner and period.")
sales_app = typer.Typer(no_args_is_help=True, help="The sales ledger.")
contests_app = typer.Typer(no_args_is_help=True, help="Contests and standings.")
app.add_typer(db_app, name="db")
app.add_typer(partners_app, name="partners")
app.add_typer(targets_app, name="targets")
app.add_typer(sales_app, name="sales")
app.add_typer(contests_app, name="contests")

out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)


def _locale() -> str:
    return get_settings().locale


def fail(key: str, **params: Any) -> NoReturn:
    """One line on stderr, exit 2: bad input, nothing changed."""
    err.print(t(key, _locale(), **params), markup=False, highlight=False)
    raise typer.Exit(2)


@contextmanager
def guarded() -> Iterator[None]:
    """Turn data errors into a one-line reason (and, for imports, one line per bad row)."""
    try:
        yield
    except ImportRejected as rejected:
        loc = _locale()
        err.print(t(rejected.key, loc, **rejected.params), markup=False, highlight=False)
        for line, errors in rejected.by_line():
            reasons = [t(e.key, loc, **e.params) for e in errors]
            err.print(t("row.line", loc, line=line, reasons=reasons), markup=False, highlight=False)
        raise typer.Exit(2) from None
    except DataError as exc:
        fail(exc.key, **exc.params)
    except SQLAlchemyError as exc:
        fail("error.database", detail=str(exc.orig if hasattr(exc, "orig") else exc).splitlines()[0])


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, ensure_ascii=False, default=str) + "\n")


def when(value: datetime | None) -> str:
    """A moment in program time for a table or a line (JSON keeps ISO 8601 UTC); label it with `time_column`."""
    return "-" if value is None else local_time(value, get_settings().timezone)


def time_column(name: str) -> str:
    """`name` labelled with the program's time zone: a table heading for `when` values
    (`created_at（北京时间）`), or a `when` value itself in a line."""
    return t("cli.time_column", _locale(), name=name, zone=zone_name(get_settings().timezone, _locale()))


# --- db ----------------------------------------------------------------------------------------


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Create or migrate the schema."""
    settings = get_settings()
    with guarded():
        context.engine(settings)
    out.print(t("cli.db_upgraded", _locale(), url=_safe_url(settings.database_url)), markup=False)


def _safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


# --- imports -----------------------------------------------------------------------------------


def _open(path: Path) -> Any:
    if not path.is_file():
        fail("error.file_not_found", value=str(path))
    return path.open("rb")


SHEET_OPTION = typer.Option(None, "--sheet", help="For an .xlsx file: the sheet to read (default: the first).")


_READ_AS = {"utf-8": "cli.read_utf8", "utf-8-sig": "cli.read_utf8_bom", "gb18030": "cli.read_gb18030",
            "xlsx": "cli.read_xlsx"}


def _report(what: str, report: ImportReport, source: CsvRows | None = None) -> None:
    out.print(t("cli.imported", _locale(), what=t(f"cli.what_{what}", _locale()), rows=report.rows,
                inserted=report.inserted, updated=report.updated, unchanged=report.unchanged), markup=False)
    if source is not None:
        _read_as(source)


def _read_as(source: CsvRows) -> None:
    """The import summary's second line: which encoding, or which sheet, the file was read as."""
    out.print(t(_READ_AS[source.source], _locale(), sheet=source.sheet), markup=False)


@partners_app.command("import")
def partners_import(file: Path, sheet: str | None = SHEET_OPTION) -> None:
    """Add or update partners and teams from a CSV or .xlsx file."""
    settings = get_settings()
    with (guarded(), _open(file) as stream, open_table(stream, ("code", "name"), sheet) as csv_rows,
          session_scope(context.engine(settings)) as session):
        report = import_partners(session, rows_from_csv(csv_rows.columns, csv_rows.rows, PARTNER_COLUMNS),
                                 default_locale=settings.locale)
    _report("partners", report, csv_rows)


@targets_app.command("import")
def targets_import(file: Path, sheet: str | None = SHEET_OPTION) -> None:
    """Targets per partner per period from a CSV or .xlsx file."""
    with (guarded(), _open(file) as stream, open_table(stream, TARGET_COLUMNS, sheet) as csv_rows,
          session_scope(context.engine()) as session):
        report = import_targets(session, rows_from_csv(csv_rows.columns, csv_rows.rows, TARGET_COLUMNS))
    _report("targets", report, csv_rows)


@sales_app.command("import")
def sales_import(file: Path, sheet: str | None = SHEET_OPTION) -> None:
    """Import sales (idempotent by id) from a CSV or .xlsx file, with a progress bar."""
    settings = get_settings()
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with guarded(), _open(file) as stream, Progress(*columns, console=err, transient=True,
                                                   disable=not err.is_terminal) as bar:
        task = bar.add_task(t("cli.importing", _locale()), total=None)
        with open_table(stream, SALE_REQUIRED, sheet) as csv_rows, session_scope(context.engine(settings)) as session:
            total = csv_rows.data_rows if csv_rows.data_rows is not None else count_lines(file)
            bar.update(task, total=total)
            report = import_sales(session, rows_from_csv(csv_rows.columns, csv_rows.rows, SALE_COLUMNS),
                                  zone(settings.timezone), progress=lambda n: bar.update(task, completed=n))
            refresh_dirty(session)
    _report("sales", report, csv_rows)


@partners_app.command("invite")
def partners_invite(code: str, json_out: bool = typer.Option(False, "--json", help="Print one JSON document.")) -> None:
    """Print a fresh one-time invite code for a partner, and the Telegram deep link."""
    settings = get_settings()
    with guarded(), session_scope(context.engine(settings)) as session:
        partner = contest_ops.partner_by_code(session, code)
        invite = new_invite(session, partner, settings.invite_ttl_days)
    link = f"https://t.me/{settings.telegram_bot_username}?start={invite.code}"
    if json_out:
        print_json({"partner": code, "invite": invite.code, "telegram_link": link,
                    "expires_at": invite.expires_at.isoformat()})
        return
    out.print(t("cli.invite", _locale(), partner=code, code=invite.code, days=settings.invite_ttl_days), markup=False)
    out.print(t("cli.invite_link", _locale(), link=link), markup=False)


# --- contests ----------------------------------------------------------------------------------


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
    json_out: bool = typer.Option(False, "--json"),
) -> None:
    """Create a contest."""
    settings = get_settings()
    with guarded():
        tz = zone(settings.timezone)
        spec = contest_ops.ContestSpec(
            name=name, metric=metric, scope=scope, team_score=team_score,
            start_at=parse_period_bound(start, tz, is_end=False), end_at=parse_period_bound(end, tz, is_end=True),
            timezone=settings.timezone, grace_seconds=parse_duration(grace), segment=parse_segment(segment),
            min_tenure_days=min_tenure_days,
            min_score=parse_score(min_score, metric) if min_score else None,
            min_satisfaction=parse_score(min_satisfaction, "satisfaction") if min_satisfaction else None,
            prizes=parse_prizes(prizes), tiers=parse_tiers(tiers, metric), top_n=top, recur=recur)
        with session_scope(context.engine(settings)) as session:
            contest = contest_ops.create(session, spec)
    if json_out:
        print_json({"id": contest.id})
    else:
        out.print(t("cli.contest_created", _locale(), id=contest.id, name=contest.name), markup=False)


def _period_text(contest: Contest) -> str:
    """The period as the chat shows it, labelled with its zone when not the program's own."""
    text = period_text(contest.start_at, contest.end_at, contest.timezone)
    return text if contest.timezone == get_settings().timezone else f"{text} ({zone_name(contest.timezone)})"


@contests_app.command("list")
def contests_list(json_out: bool = typer.Option(False, "--json")) -> None:
    """All contests with their status."""
    from sqlalchemy import select

    loc = _locale()
    now = utcnow()
    with guarded(), session_scope(context.engine()) as session:
        rows = list(session.execute(select(Contest).order_by(Contest.start_at, Contest.id)).scalars())
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
                      _period_text(c), t(f"status.{contest_ops.status(c, now)}", loc))
    out.print(table)


def contest_summary(c: Contest, now: datetime) -> dict[str, Any]:
    return {"id": c.id, "name": c.name, "metric": c.metric, "scope": c.scope, "team_score": c.team_score,
            "start": c.start_at.isoformat(), "end": c.end_at.isoformat(), "timezone": c.timezone,
            "grace_seconds": c.grace_seconds, "segment": c.segment, "min_tenure_days": c.min_tenure_days,
            "min_score": score_json(c.min_score), "min_satisfaction": score_json(c.min_satisfaction),
            "prizes": c.prizes, "tiers": [{**tier, "threshold": score_json(tier["threshold"])} for tier in c.tiers],
            "top": c.top_n, "recur": c.recur, "previous_id": c.previous_id,
            "status": contest_ops.status(c, now), "closed_at": c.closed_at.isoformat() if c.closed_at else None}


def score_json(score: int | None) -> str | None:
    """Exact decimal text in the metric's unit (JSON numbers would go through float)."""
    from models.rules import score_to_decimal

    return None if score is None else str(score_to_decimal(score))


@contests_app.command("show")
def contests_show(contest_id: int = typer.Argument(..., metavar="ID"),
                  limit: int = typer.Option(20, "--limit", help="lines in the table (JSON has everyone)"),
                  json_out: bool = typer.Option(False, "--json")) -> None:
    """One contest and its live or frozen standings."""
    from sqlalchemy import select

    loc = _locale()
    now = utcnow()
    with guarded(), session_scope(context.engine()) as session:
        contest = session.get(Contest, contest_id)
        if contest is None:
            fail("error.unknown_contest", value=contest_id)
        standings.ensure_fresh(session, contest)
        session.refresh(contest)
        lines = standings.all_lines(session, contest)
        partners = dict(session.execute(select(Partner.id, Partner.code)).all())
        teams = dict(session.execute(select(Team.id, Team.code)).all())
        late = contest_ops.late_sales(session, contest)
    doc = contest_summary(contest, now)
    doc["late_sales"] = late
    doc["standings"] = [line_json(line, contest, partners, teams, loc) for line in lines if line.kind != "member"]
    if contest.scope == "team":
        by_team: dict[int, list] = {}
        for line in lines:
            if line.kind == "member":
                by_team.setdefault(line.team_id, []).append(line_json(line, contest, partners, teams, loc))
        for entry, line in zip(doc["standings"], [x for x in lines if x.kind != "member"], strict=True):
            entry["members"] = by_team.get(line.team_id, [])
    if json_out:
        print_json(doc)
        return
    _print_standings(contest, doc, [x for x in lines if x.kind != "member"], limit, loc)


def line_json(line: Any, contest: Contest, partners: dict, teams: dict, loc: str) -> dict[str, Any]:
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


def _print_standings(contest: Contest, doc: dict[str, Any], lines: list, limit: int, loc: str) -> None:
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
        out.print(t("cli.late_sales", loc, count=doc["late_sales"]), markup=False)


@contests_app.command("close-due")
def contests_close_due(now_text: str | None = typer.Option(None, "--now", help="ISO-8601; default: now")) -> None:
    """Close every contest whose period plus grace has ended, and queue its announcements (idempotent).

    The scheduler's own close-and-announce (`scheduler.jobs.close_due`): a contest closed here is
    announced here, once, and a later scheduler tick finds nothing left to do.
    """
    from handlers.announcements import ImageConfig
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
        if not closed_now:
            out.print(t("cli.nothing_due", loc), markup=False)


@app.command("demo")
def demo(db: Path = typer.Option(Path("mianzi-demo.db"), "--db", help="SQLite file for the sample program"),
         script: bool = typer.Option(False, "--script", help="play the scripted tour even in a terminal")) -> None:
    """A complete sample program and a chat in the terminal (a scripted tour without a terminal)."""
    from bot.demo import run

    settings = get_settings()
    raise typer.Exit(run(db, settings.timezone, settings.locale, interactive=False if script else None))


def channel_names(settings: Settings, on: dict[str, bool], loc: str) -> list[str]:
    """The chat channels the server answers on (`on`: the app's, as `/healthz` reports them), as
    `mianzi serve`'s start-up line names them."""
    names = []
    if on.get("telegram"):
        names.append(t("web.telegram_webhook" if settings.telegram_webhook_url else "web.telegram_polling", loc))
    if on.get("wechat"):
        names.append(t("web.wechat_on", loc))
    if on.get("wecom"):
        names.append(t("web.wecom_on", loc))
    return names


@app.command("serve")
def serve(host: str = typer.Option("127.0.0.1", "--host"), port: int = typer.Option(8080, "--port"),
          access_log: bool = typer.Option(False, "--access-log/--no-access-log",
                                          help="a log line per HTTP request (every webhook message)")) -> None:
    """The server: /healthz, the Telegram webhook (or long polling), the WeChat and WeCom callbacks, the sales API."""
    import logging

    import uvicorn

    from bot.app import create_app

    settings = get_settings()
    loc = _locale()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # its INFO lines show Bot API URLs, token included
    with guarded():
        application = create_app(settings)
    channels = channel_names(settings, application.state.channels, loc)
    out.print(t("web.serving", loc, url=f"http://{host}:{port}"), markup=False, highlight=False)
    listed = t("web.channel_separator", loc).join(channels) if channels else t("web.no_channels", loc)
    out.print(t("web.channels", loc, channels=listed),
              markup=False, highlight=False)
    out.print(t("web.api_on" if settings.api_token else "web.api_off", loc), markup=False, highlight=False)
    uvicorn.run(application, host=host, port=port, log_level="info", access_log=access_log)


deliveries_app = typer.Typer(no_args_is_help=True, help="Outbound pushes: reports and draining.")
app.add_typer(deliveries_app, name="deliveries")


@app.command("broadcast")
def broadcast(text: str = typer.Argument(..., help="the announcement"),
              segment: str | None = typer.Option(None, "--segment",
                                                 help="KEY=VALUE[,…]: region, city_tier, industry, size, team, role"),
              at: str | None = typer.Option(None, "--at", help="ISO-8601 send time (program time zone); default now"),
              json_out: bool = typer.Option(False, "--json")) -> None:
    """Queue an announcement to every bound partner, or a segment (sent by the delivery worker)."""
    from handlers import broadcasts
    from models.rules import parse_segment as parse_seg

    settings = get_settings()
    loc = _locale()
    with guarded():
        tz = zone(settings.timezone)
        now = utcnow()
        send_at = parse_datetime_local(at, tz) if at else now
        seg = parse_seg(segment, allow_role=True)
        with session_scope(context.engine(settings)) as session:
            item, _count = broadcasts.draft(session, text, seg, None, send_at, now)
            item = broadcasts.confirm(session, item.id, now)  # type: ignore[arg-type]
    if json_out:
        print_json({"id": item.id, "recipients": item.recipients, "send_at": item.send_at.isoformat()})
        return
    out.print(t("broadcast.cli_queued", loc, id=item.id, count=item.recipients,
                at=time_column(when(item.send_at))), markup=False)


@deliveries_app.command("report")
def deliveries_report(batch: int | None = typer.Argument(None, metavar="[ID]", help="a broadcast id"),
                      json_out: bool = typer.Option(False, "--json")) -> None:
    """What was sent, pending, failed, blocked or undeliverable, per channel, with the reasons."""
    from messages.render import render
    from models import delivery_report as outbox

    loc = _locale()
    with guarded(), session_scope(context.engine()) as session:
        data = outbox.report(session, batch_id=batch, kind="broadcast" if batch is not None else None)
    if json_out:
        print_json({"id": batch, **data})
        return
    out.print(render("deliveries", loc, **data, title=f"#{batch}" if batch is not None else ""), markup=False,
              highlight=False)


@deliveries_app.command("drain")
def deliveries_drain() -> None:
    """Send everything that is due now through the configured channels, then exit (cron, ops)."""
    import asyncio
    from datetime import timedelta

    from bot.channels import ceilings, push_senders
    from bot.delivery import DeliveryWorker

    settings = get_settings()

    async def go() -> None:
        engine = context.engine(settings)
        worker = DeliveryWorker(engine, push_senders(settings, engine), ceilings(settings),
                                concurrency=settings.delivery_concurrency,
                                max_attempts=settings.delivery_max_attempts,
                                lease=timedelta(seconds=settings.delivery_lease_seconds))
        try:
            stats = await worker.drain()
        finally:
            await worker.close()
        print_json(stats.__dict__)

    with guarded():
        asyncio.run(go())


# --- points, rewards store, trainings, feedback (issue 7) ---------------------------------------

rewards_app = typer.Typer(no_args_is_help=True, help="The rewards catalog (积分商城).")
redemptions_app = typer.Typer(no_args_is_help=True, help="Redemption requests: list, approve, reject.")
points_app = typer.Typer(no_args_is_help=True, help="The points ledger: balances and adjustments.")
trainings_app = typer.Typer(no_args_is_help=True, help="Trainings (培训): create, list, attendance.")
feedback_app = typer.Typer(no_args_is_help=True, help="Feedback surveys after trainings and contests.")
app.add_typer(rewards_app, name="rewards")
app.add_typer(redemptions_app, name="redemptions")
app.add_typer(points_app, name="points")
app.add_typer(trainings_app, name="trainings")
app.add_typer(feedback_app, name="feedback")


@rewards_app.command("import")
def rewards_import(file: Path, sheet: str | None = SHEET_OPTION) -> None:
    """Add or update catalog items from a CSV or .xlsx file (sku,name_zh,name_en,points,stock,active)."""
    from models import rewards as store

    with (guarded(), _open(file) as stream, open_table(stream, store.CATALOG_REQUIRED, sheet) as csv_rows,
          session_scope(context.engine()) as session):
        report = store.import_catalog(session, rows_from_csv(csv_rows.columns, csv_rows.rows, store.CATALOG_COLUMNS),
                                      utcnow())
    loc = _locale()
    out.print(t("cli.imported", loc, what=t("rewards.what_catalog", loc), rows=report.rows, inserted=report.inserted,
                updated=report.updated, unchanged=report.unchanged), markup=False)
    _read_as(csv_rows)


@rewards_app.command("list")
def rewards_list(json_out: bool = typer.Option(False, "--json")) -> None:
    """Every catalog item with its points, stock and pending requests."""
    from sqlalchemy import func, select

    from models import rewards as store
    from models.tables import Redemption

    loc = _locale()
    with guarded(), session_scope(context.engine()) as session:
        items = store.items(session, active_only=False)
        pending = dict(session.execute(select(Redemption.item_id, func.count()).where(Redemption.status == "pending")
                                       .group_by(Redemption.item_id)).all())
    docs = [{"sku": i.sku, "name_zh": i.name_zh, "name_en": i.name_en, "points": i.points, "stock": i.stock,
             "active": i.active, "pending": int(pending.get(i.id, 0))} for i in items]
    if json_out:
        print_json(docs)
        return
    if not docs:
        out.print(t("rewards.empty", loc), markup=False)
        return
    table = Table("sku", "name_zh", "name_en", "points", "stock", "active", "pending")
    for d in docs:
        table.add_row(*(number(d[k]) if k == "points" else str(d[k])
                        for k in ("sku", "name_zh", "name_en", "points", "stock", "active", "pending")))
    out.print(table)


def _redemption_json(r: Any, item: Any, partner: Any) -> dict[str, Any]:
    return {"id": r.id, "partner": partner.code, "partner_name": partner.name, "sku": item.sku,
            "item": item.name_zh, "item_en": item.name_en, "points": r.points, "status": r.status,
            "created_at": r.created_at.isoformat(), "decided_at": r.decided_at.isoformat() if r.decided_at else None,
            "note": r.note}


@redemptions_app.command("list")
def redemptions_list(status: str | None = typer.Option(None, "--status", help="pending|approved|rejected"),
                     json_out: bool = typer.Option(False, "--json")) -> None:
    """Redemption requests, oldest first."""
    from models import rewards as store
    from models.tables import REDEMPTION_STATUSES

    loc = _locale()
    if status is not None and status not in REDEMPTION_STATUSES:
        fail("rewards.bad_status", value=status, choices=", ".join(REDEMPTION_STATUSES))
    with guarded(), session_scope(context.engine()) as session:
        rows = list(store.redemptions(session, status=status))
        docs = [_redemption_json(r, i, p) for r, i, p in rows]
    if json_out:
        print_json(docs)
        return
    if not docs:
        out.print(t("rewards.no_redemptions", loc), markup=False)
        return
    table = Table("id", "partner", "sku", "points", "status", time_column("created_at"), "note")
    for d, (r, _i, _p) in zip(docs, rows, strict=True):
        table.add_row(str(d["id"]), f"{d['partner']} {d['partner_name']}", d["sku"], number(d["points"]),
                      t(f"redemption.{d['status']}", loc), when(r.created_at), d["note"] or "")
    out.print(table)


@redemptions_app.command("approve")
def redemptions_approve(redemption_id: int = typer.Argument(..., metavar="ID"),
                        json_out: bool = typer.Option(False, "--json")) -> None:
    """Approve a pending redemption; the partner is told through the outbox."""
    _decide_redemption(redemption_id, True, None, json_out)


@redemptions_app.command("reject")
def redemptions_reject(redemption_id: int = typer.Argument(..., metavar="ID"),
                       reason: str | None = typer.Option(None, "--reason", help="told to the partner"),
                       json_out: bool = typer.Option(False, "--json")) -> None:
    """Reject a pending redemption: points and stock are given back, the partner is told."""
    _decide_redemption(redemption_id, False, reason, json_out)


def _decide_redemption(redemption_id: int, approve: bool, reason: str | None, json_out: bool) -> None:
    from handlers.rewards import tell_partner
    from models import rewards as store

    loc = _locale()
    now = utcnow()
    with guarded(), session_scope(context.engine()) as session:
        if approve:
            decision = store.approve(session, redemption_id, None, now)
        else:
            decision = store.reject(session, redemption_id, None, reason, now)
        tell_partner(session, decision, now)
        doc = _redemption_json(decision.redemption, decision.item, decision.partner)
    if json_out:
        print_json(doc)
        return
    out.print(t("rewards.cli_approved" if approve else "rewards.cli_rejected", loc, id=redemption_id), markup=False)


@points_app.command("adjust", context_settings={"ignore_unknown_options": True})
def points_adjust(partner: str = typer.Argument(..., metavar="PARTNER"),
                  amount: str = typer.Argument(..., metavar="AMOUNT", help="+100 or -50"),
                  reason: str = typer.Option(..., "--reason", help="why; shown to the partner"),
                  json_out: bool = typer.Option(False, "--json")) -> None:
    """Add or take away points with a reason (never below zero); the partner is told."""
    from handlers.points import tell_adjusted
    from models import points

    loc = _locale()
    now = utcnow()
    with guarded(), session_scope(context.engine()) as session:
        who = contest_ops.partner_by_code(session, partner)
        entry = points.adjust(session, who.id, points.parse_amount(amount), reason, None, now)  # type: ignore[arg-type]
        balance = tell_adjusted(session, who.id, entry.amount, entry.reason["note"], entry.id, now)  # type: ignore[arg-type]
    if json_out:
        print_json({"partner": partner, "amount": entry.amount, "balance": balance, "entry": entry.id})
        return
    out.print(t("ledger.cli_adjusted", loc, code=partner, amount=entry.amount, balance=balance), markup=False)


@points_app.command("show")
def points_show(partner: str = typer.Argument(..., metavar="PARTNER"),
                limit: int = typer.Option(20, "--limit", help="entries shown, newest first"),
                json_out: bool = typer.Option(False, "--json")) -> None:
    """A partner's balance and latest ledger entries."""
    from models import points

    loc = _locale()
    with guarded(), session_scope(context.engine()) as session:
        who = contest_ops.partner_by_code(session, partner)
        balance = points.balance(session, who.id)  # type: ignore[arg-type]
        rows = points.entries(session, who.id, limit)  # type: ignore[arg-type]
    docs = [{"id": e.id, "kind": e.kind, "amount": e.amount, "reason": e.reason, "source_key": e.source_key,
             "created_at": e.created_at.isoformat()} for e in rows]
    if json_out:
        print_json({"partner": partner, "balance": balance, "entries": docs})
        return
    out.print(t("ledger.cli_balance", loc, name=who.name, code=who.code, balance=balance), markup=False)
    if not docs:
        out.print(t("ledger.no_entries", loc), markup=False)
        return
    table = Table(time_column("created_at"), "kind", "amount", "reason")
    for d, e in zip(docs, rows, strict=True):
        code = d["reason"].get("code")
        label = t(code, loc) if code else ""
        note = d["reason"].get("note")
        table.add_row(when(e.created_at), d["kind"], signed(d["amount"]), f"{label} {note}" if note else label)
    out.print(table)


@trainings_app.command("create")
def trainings_create(
    title: str = typer.Option(..., "--title"),
    start: str = typer.Option(..., "--start", help="DATETIME (program time zone), e.g. 2026-12-03T14:00"),
    duration: str = typer.Option("90m", "--duration", help="e.g. 90m, 2h"),
    place: str = typer.Option(..., "--place", help="a place or a link"),
    segment: str | None = typer.Option(None, "--segment", help="KEY=VALUE[,…]: region, city_tier, industry, "
                                                                "size, team, role"),
    points_: int = typer.Option(0, "--points", help="points for attending"),
    code: str | None = typer.Option(None, "--code", help="check-in code (default: a random one)"),
    json_out: bool = typer.Option(False, "--json"),
) -> None:
    """Create a training; prints its id and check-in code."""
    from models import trainings

    settings = get_settings()
    with guarded():
        tz = zone(settings.timezone)
        spec = trainings.TrainingSpec(title=title, start_at=parse_period_bound(start, tz, is_end=False),
                                      duration_seconds=parse_duration(duration), place=place,
                                      segment=parse_segment(segment, allow_role=True), points=points_, code=code,
                                      timezone=settings.timezone)
        with session_scope(context.engine(settings)) as session:
            item = trainings.create(session, spec, utcnow())
    if json_out:
        print_json({"id": item.id, "code": item.checkin_code, "start": item.start_at.isoformat()})
        return
    out.print(t("training.created", _locale(), id=item.id, title=item.title, code=item.checkin_code), markup=False)


@trainings_app.command("list")
def trainings_list(json_out: bool = typer.Option(False, "--json")) -> None:
    """Every training with its sign-ups and attendance."""
    from sqlalchemy import func, select

    from models import trainings
    from models.tables import Training, TrainingSignup

    loc = _locale()
    with guarded(), session_scope(context.engine()) as session:
        rows = list(session.execute(select(Training).order_by(Training.start_at, Training.id)).scalars())
        counts = {tid: (int(joined), int(came)) for tid, joined, came in session.execute(
            select(TrainingSignup.training_id,
                   func.count().filter(TrainingSignup.walk_in.is_(False)),
                   func.count(TrainingSignup.attended_at)).group_by(TrainingSignup.training_id))}
    docs = [{"id": x.id, "title": x.title, "start": x.start_at.isoformat(), "end": trainings.end_at(x).isoformat(),
             "place": x.place, "segment": x.segment, "points": x.points, "code": x.checkin_code,
             "joined": counts.get(x.id, (0, 0))[0], "attended": counts.get(x.id, (0, 0))[1]} for x in rows]
    if json_out:
        print_json(docs)
        return
    if not docs:
        out.print(t("training.no_trainings", loc), markup=False)
        return
    table = Table("id", "title", time_column("start"), "place", "points", "code", "joined", "attended")
    for d, x in zip(docs, rows, strict=True):
        table.add_row(str(d["id"]), d["title"], when(x.start_at), d["place"],
                      number(d["points"]), d["code"], str(d["joined"]), str(d["attended"]))
    out.print(table)


@trainings_app.command("attendance")
def trainings_attendance(training_id: int = typer.Argument(..., metavar="ID"),
                         json_out: bool = typer.Option(False, "--json")) -> None:
    """Who joined a training and who checked in."""
    from models import trainings
    from models.tables import Training

    with guarded(), session_scope(context.engine()) as session:
        item = session.get(Training, training_id)
        if item is None:
            fail("training.unknown", value=training_id)
        rows = trainings.attendance(session, training_id)
    people = [{"partner": p.code, "name": p.name, "joined_at": None if s.walk_in else s.joined_at.isoformat(),
               "walk_in": s.walk_in, "attended_at": s.attended_at.isoformat() if s.attended_at else None,
               "points": item.points if s.attended_at else 0} for s, p in rows]
    doc = {"id": item.id, "title": item.title, "start": item.start_at.isoformat(),
           "joined": sum(1 for x in people if not x["walk_in"]),
           "attended": sum(1 for x in people if x["attended_at"]), "people": people}
    if json_out:
        print_json(doc)
        return
    out.print(f"#{item.id} {item.title} · {time_column(when(item.start_at))} · {doc['joined']} / {doc['attended']}",
              markup=False, highlight=False)
    table = Table("partner", "name", time_column("joined_at"), time_column("attended_at"), "points")
    for x, (s, _p) in zip(people, rows, strict=True):
        table.add_row(x["partner"], x["name"], when(None if s.walk_in else s.joined_at), when(s.attended_at),
                      number(x["points"]))
    out.print(table)


@feedback_app.command("report")
def feedback_report(json_out: bool = typer.Option(False, "--json")) -> None:
    """Average rating, spread and comments per training and contest."""
    from sqlalchemy import select

    from models import feedback
    from models.tables import Training

    loc = _locale()
    with guarded(), session_scope(context.engine()) as session:
        summaries = feedback.report(session)
        partners = dict(session.execute(select(Partner.id, Partner.code)).all())
        titles: dict[tuple[str, int], str] = {}
        for s in summaries:
            if s.subject == "training":
                training = session.get(Training, s.subject_id)
                titles[(s.subject, s.subject_id)] = training.title if training else ""
            else:
                contest = session.get(Contest, s.subject_id)
                titles[(s.subject, s.subject_id)] = contest.name if contest else ""
    docs = [{"subject": s.subject, "id": s.subject_id, "title": titles[(s.subject, s.subject_id)], "asked": s.asked,
             "answered": s.answered, "average": str(s.average) if s.average is not None else None,
             "ratings": {str(k): v for k, v in s.counts.items()},
             "comments": [{"partner": partners.get(c["partner_id"]), "rating": c["rating"], "comment": c["comment"]}
                          for c in s.comments]} for s in summaries]
    if json_out:
        print_json(docs)
        return
    if not docs:
        out.print(t("feedback.no_answers", loc), markup=False)
        return
    table = Table(*(t(f"feedback.col_{k}", loc) for k in ("subject", "asked", "answered", "average", "spread")))
    for d in docs:
        spread = " / ".join(str(d["ratings"][str(n)]) for n in range(1, 6))
        table.add_row(f"{t('feedback.subject_' + d['subject'], loc)} #{d['id']} {d['title']}", str(d["asked"]),
                      str(d["answered"]), d["average"] or "-", spread)
    out.print(table)
    for d in docs:
        for c in d["comments"]:
            out.print(f"#{d['id']} {c['partner']} ({c['rating']}): {c['comment']}", markup=False, highlight=False)


def main() -> None:
    app()
