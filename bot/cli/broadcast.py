"""`mianzi broadcast`: an announcement to a segment, previewed and queued."""

from __future__ import annotations

import typer

from bot.cli.common import JsonOption, _locale, database, guarded, out, print_json, time_column, when


def broadcast(text: str = typer.Argument(..., help="the announcement"),
              segment: str | None = typer.Option(None, "--segment",
                                                 help="KEY=VALUE[,…]: region, city_tier, industry, size, team, role, "
                                                      "platform"),
              at: str | None = typer.Option(None, "--at", help="ISO-8601 send time (program time zone); default now"),
              json_out: JsonOption = False) -> None:
    """Queue an announcement to every bound partner, or a segment (sent by the delivery worker)."""
    from bot.settings import get_settings
    from handlers import broadcasts
    from messages.render import t
    from models.rules import parse_segment as parse_seg
    from models.values import parse_datetime_local, utcnow, zone

    settings = get_settings()
    loc = _locale()
    with guarded():
        tz = zone(settings.timezone)
        now = utcnow()
        send_at = parse_datetime_local(at, tz) if at else now
        seg = parse_seg(segment, allow_role=True, allow_platform=True)
        with database(settings) as session:
            item, _count = broadcasts.draft(session, text, seg, None, send_at, now)
            item = broadcasts.confirm(session, item.id, now)
    if json_out:
        print_json({"id": item.id, "recipients": item.recipients, "send_at": item.send_at.isoformat()})
        return
    out.print(t("broadcast.cli_queued", loc, id=item.id, count=item.recipients,
                at=time_column(when(item.send_at))), markup=False)


