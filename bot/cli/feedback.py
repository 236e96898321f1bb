"""`mianzi feedback …`: feedback surveys after trainings and contests."""

from __future__ import annotations

from typing import Any

import typer

from bot.cli.common import JsonOption, _locale, database, json_or_empty, out

feedback_app = typer.Typer(no_args_is_help=True, help="Feedback surveys after trainings and contests.")


@feedback_app.command("report")
def feedback_report(json_out: JsonOption = False) -> None:
    """Average rating, spread and comments per training and contest."""
    from rich.table import Table

    from messages.render import t
    from models import feedback
    from models.contests import partner_codes

    loc = _locale()
    with database() as session:
        summaries = feedback.report(session)
        partners = partner_codes(session=session)
        titles = feedback.subject_titles(session, summaries=summaries)
    docs: list[dict[str, Any]]
    docs = [{"subject": s.subject, "id": s.subject_id, "title": titles[(s.subject, s.subject_id)], "asked": s.asked,
             "answered": s.answered, "average": str(s.average) if s.average is not None else None,
             "ratings": {str(k): v for k, v in s.counts.items()},
             "comments": [{"partner": partners.get(c["partner_id"]), "rating": c["rating"], "comment": c["comment"]}
                          for c in s.comments]} for s in summaries]
    if json_or_empty(docs, json_out, "feedback.no_answers"):
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


