"""`mianzi trainings …`: trainings (培训): create, list, attendance."""

from __future__ import annotations

from typing import Any

import typer

from bot.cli.common import (
    JsonOption,
    _locale,
    database,
    fail,
    guarded,
    json_or_empty,
    out,
    print_json,
    time_column,
    when,
)

trainings_app = typer.Typer(no_args_is_help=True, help="Trainings (培训): create, list, attendance.")


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
    json_out: JsonOption = False,
) -> None:
    """Create a training; prints its id and check-in code."""
    from bot.settings import get_settings
    from messages.render import t
    from models import trainings
    from models.rules import parse_segment
    from models.values import parse_duration, parse_period_bound, utcnow, zone

    settings = get_settings()
    with guarded():
        tz = zone(settings.timezone)
        spec = trainings.TrainingSpec(title=title, start_at=parse_period_bound(start, tz, is_end=False),
                                      duration_seconds=parse_duration(duration), place=place,
                                      segment=parse_segment(segment, allow_role=True), points=points_, code=code,
                                      timezone=settings.timezone)
        with database(settings) as session:
            item = trainings.create(session, spec, utcnow())
    if json_out:
        print_json({"id": item.id, "code": item.checkin_code, "start": item.start_at.isoformat()})
        return
    out.print(t("training.created", _locale(), id=item.id, title=item.title, code=item.checkin_code), markup=False)


@trainings_app.command("list")
def trainings_list(json_out: JsonOption = False) -> None:
    """Every training with its sign-ups and attendance."""
    from rich.table import Table

    from messages.render import number
    from models import trainings

    with database() as session:
        rows = trainings.all_trainings(session=session)
        counts = trainings.signup_counts(session=session)
    docs: list[dict[str, Any]]
    docs = [{"id": x.id, "title": x.title, "start": x.start_at.isoformat(), "end": trainings.end_at(x).isoformat(),
             "place": x.place, "segment": x.segment, "points": x.points, "code": x.checkin_code,
             "joined": counts.get(x.id, (0, 0))[0], "attended": counts.get(x.id, (0, 0))[1]} for x in rows]
    if json_or_empty(docs, json_out, "training.no_trainings"):
        return
    table = Table("id", "title", time_column("start"), "place", "points", "code", "joined", "attended")
    for d, x in zip(docs, rows, strict=True):
        table.add_row(str(d["id"]), d["title"], when(x.start_at), d["place"],
                      number(d["points"]), d["code"], str(d["joined"]), str(d["attended"]))
    out.print(table)


@trainings_app.command("attendance")
def trainings_attendance(training_id: int = typer.Argument(..., metavar="ID"),
                         json_out: JsonOption = False) -> None:
    """Who joined a training and who checked in."""
    from rich.table import Table

    from messages.render import number
    from models import trainings

    with database() as session:
        item = trainings.training_by_id(session, training_id=training_id)
        if item is None:
            fail("training.unknown", value=training_id)
        rows = trainings.attendance(session, training_id)
    people: list[dict[str, Any]]
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


