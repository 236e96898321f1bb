"""`mianzi deliveries …`: outbound pushes: reports and draining."""

from __future__ import annotations

import typer

from bot.cli.common import JsonOption, _locale, database, guarded, out, print_json

deliveries_app = typer.Typer(no_args_is_help=True, help="Outbound pushes: reports and draining.")


@deliveries_app.command("report")
def deliveries_report(batch: int | None = typer.Argument(None, metavar="[ID]", help="a broadcast id"),
                      json_out: JsonOption = False) -> None:
    """What was sent, pending, failed, blocked or undeliverable, per channel, with the reasons."""
    from messages.render import render
    from models import delivery_report

    loc = _locale()
    with database() as session:
        data = delivery_report.report(session, batch_id=batch, kind="broadcast" if batch is not None else None)
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

    from bot import context
    from bot.channels.registry import ceilings, push_senders
    from bot.delivery.worker import DeliveryWorker
    from bot.settings import get_settings
    from models.leadership import Leadership

    settings = get_settings()

    async def go() -> None:
        engine = context.engine(settings)
        leadership = Leadership(engine)  # beside a running `serve` (PostgreSQL), only a channel nobody leads
        worker = DeliveryWorker(engine, push_senders(settings, engine), ceilings(settings),
                                concurrency=settings.delivery_concurrency,
                                max_attempts=settings.delivery_max_attempts,
                                lease=timedelta(seconds=settings.delivery_lease_seconds),
                                leadership=leadership, election_every=settings.delivery_election_seconds)
        try:
            stats = await worker.drain()
        finally:
            await worker.close()
            await asyncio.to_thread(leadership.close)
        print_json({**stats.__dict__, "channels": sorted(worker.senders),
                    "delivered_for": sorted(worker.leading)})

    with guarded():
        asyncio.run(go())


# --- points, rewards store, trainings, feedback (issue 7) ---------------------------------------

