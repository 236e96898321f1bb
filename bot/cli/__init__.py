"""The `mianzi` command line (DESIGN §4): one module per command group, words from `messages/`, rules from
`models/` and `handlers/`. What every group shares (errors, `--json`, program time) is in `common`."""

from __future__ import annotations

import typer

from bot.cli import (
    admin,
    broadcast,
    contests,
    db,
    deliveries,
    feedback,
    partners,
    points,
    redemptions,
    rewards,
    sales,
    serve,
    targets,
    teams,
    trainings,
)

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Mianzi: partner engagement for channel programs.")
app.add_typer(db.db_app, name="db")
app.add_typer(partners.partners_app, name="partners")
app.add_typer(teams.teams_app, name="teams")
app.add_typer(targets.targets_app, name="targets")
app.add_typer(sales.sales_app, name="sales")
app.add_typer(contests.contests_app, name="contests")
app.command("demo")(serve.demo)
app.command("serve")(serve.serve)
app.command("broadcast")(broadcast.broadcast)
app.add_typer(deliveries.deliveries_app, name="deliveries")
app.add_typer(rewards.rewards_app, name="rewards")
app.add_typer(redemptions.redemptions_app, name="redemptions")
app.add_typer(points.points_app, name="points")
app.add_typer(trainings.trainings_app, name="trainings")
app.add_typer(feedback.feedback_app, name="feedback")
app.add_typer(admin.admin_app, name="admin")


def main() -> None:
    app()
