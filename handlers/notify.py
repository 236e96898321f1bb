"""Helpers shared by the handlers: one-line replies (`say`) and pushes."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

from sqlmodel import Session

from handlers.identity import Asker
from handlers.types import Button, Reply
from messages.render import render
from models import outbox
from models.recipients import Recipient, recipients


def say(asker: Asker, key: str, **params: object) -> Reply:
    """A one-line reply from the string table."""
    return Reply("say", {"key": key, "params": params}, asker.locale)


def push(session: Session, partner_ids: Iterable[int], *, key: Callable[[int], str], kind: str, template: str,
         context: Callable[[Recipient], dict[str, Any]] | dict[str, Any], now: datetime,
         buttons: Callable[[Recipient], list[Button]] | None = None, exclude_identities: Iterable[int] = ()) -> int:
    """Queue one message per partner, to their most recently used chat account, in their language.

    Idempotent through the outbox key; returns how many rows were new. Partners with no chat
    account get nothing (they see the news the next time they ask). `exclude_identities`: accounts
    not to use (see `models.recipients.recipients`).
    """
    rows = []
    for r in recipients(session, partner_ids=list(partner_ids), exclude_identities=exclude_identities):
        ctx = context(r) if callable(context) else context
        payload: dict[str, Any] = {"text": render(template, r.locale, **ctx)}
        if buttons is not None:
            payload["buttons"] = [[b.label, b.data] for b in buttons(r)]
        rows.append(outbox.personal(r, key=key(r.partner_id), kind=kind, payload=payload))
    return outbox.queue(session, rows, now)
