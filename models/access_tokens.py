"""Queries about the platform access tokens every server process shares (`AccessToken`, one row per app).

The lease protocol is `bot.channels.wechat.access_token`'s: `fetched_at` in the future means a
refresh is in progress, leased until then. Each function runs in a transaction of its own on
`engine` (they are called from worker threads, between HTTP calls).
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Engine, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from models.db import rowcount, table_of
from models.tables import AccessToken

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

_TABLE = table_of(AccessToken)


def stored(engine: Engine, *, app: str) -> tuple[str, datetime] | None:
    """The app's stored token and its expiry (the token "" before the first fetch), if it has a row."""
    with engine.connect() as conn:
        row = conn.execute(select(_TABLE.c.token, _TABLE.c.expires_at).where(_TABLE.c.app == app)).first()
    return None if row is None else (row.token, row.expires_at)


def take_lease(engine: Engine, *, app: str, now: datetime, until: datetime, expiring_by: datetime,
               stale: str | None = None) -> bool:
    """Lease the refresh of the app's token until `until`, if nobody holds the lease (`fetched_at`
    not after `now`) and the token needs one: none yet, expiring by `expiring_by`, or `stale`.

    The app's row is created first when it has none (an empty token, expired, not leased).
    """
    try:
        with engine.begin() as conn:
            conn.execute(insert(_TABLE).values(app=app, token="", expires_at=EPOCH, fetched_at=EPOCH))
    except IntegrityError:
        pass  # the row exists: the usual case
    t = _TABLE.c
    needs = or_(t.token == "", t.expires_at <= expiring_by)
    if stale is not None:
        needs = or_(needs, t.token == stale)
    with engine.begin() as conn:
        result = conn.execute(update(_TABLE).where(t.app == app, t.fetched_at <= now, needs)
                              .values(fetched_at=until))
    return rowcount(result) == 1


def save(engine: Engine, *, app: str, token: str, expires_at: datetime, fetched_at: datetime) -> None:
    """Store a freshly fetched token (which ends the lease)."""
    with engine.begin() as conn:
        conn.execute(update(_TABLE).where(_TABLE.c.app == app)
                     .values(token=token, expires_at=expires_at, fetched_at=fetched_at))


def end_lease(engine: Engine, *, app: str, now: datetime) -> None:
    """Give the lease back (a failed fetch), so the next caller may try at once."""
    with engine.begin() as conn:
        conn.execute(update(_TABLE).where(_TABLE.c.app == app).values(fetched_at=now))
