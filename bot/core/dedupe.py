"""Processing each inbound delivery once (DESIGN §5: Telegram and WeChat both retry).

Platforms redeliver when an answer is slow or not 2xx, and Telegram's `update_id`s can jump, so
the check is "have we seen this exact key recently", not "is it greater than the last one".

`Dedupe` is the seam. `RecentKeys` keeps the recent keys of this process in memory: enough for
one web worker. `DatabaseKeys` claims each key with an insert into `InboundSeen` (unique on
platform + key), so several workers behind one PostgreSQL database process a delivery once.
`Layered` asks memory first, so a burst of retries costs no database round trip.

A key is claimed before it is processed: a crash in between loses that one delivery rather
than risking a double answer (at most once, like a user who repeats a command). A chat message
is claimed better still, by `DatabaseKeys.claim` as the first statement of the transaction that
answers it: the claim and the answer's changes commit together or not at all, and a second
delivery of the same key waits for the first one's commit and then finds the key taken.

WeChat and WeCom sign only `timestamp` and `nonce` in plaintext mode, so the same mechanism
remembers each signed (timestamp, nonce) pair as a key of its own (`Nonce`): one pair goes with
one message. Keys are kept at least as long as a timestamp is accepted (`Nonce.keep`), so a
captured request can neither carry a second message nor run again once its claims are pruned.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import timedelta
from typing import Protocol

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import IntegrityError

from models import inbound_seen
from models.values import utcnow


class Dedupe(Protocol):
    def seen_before(self, platform: str, key: str) -> bool:
        """Claim `key`: False the first time (process it), True for every repeat (skip it)."""
        ...


class RecentKeys:
    """The most recent `capacity` keys per process; the oldest are forgotten first."""

    def __init__(self, capacity: int = 10_000) -> None:
        self.capacity = capacity
        self._keys: OrderedDict[tuple[str, str], None] = OrderedDict()
        self._lock = threading.Lock()

    def seen_before(self, platform: str, key: str) -> bool:
        item = (platform, key)
        with self._lock:
            if item in self._keys:
                self._keys.move_to_end(item)
                return True
            self._keys[item] = None
            if len(self._keys) > self.capacity:
                self._keys.popitem(last=False)
            return False

    def __len__(self) -> int:
        return len(self._keys)


class DatabaseKeys:
    """Claims in the `InboundSeen` table, shared by every process on the database.

    Rows older than `keep` are pruned now and then (platforms stop retrying within a day).
    """

    def __init__(self, engine: Engine, keep: timedelta = timedelta(days=2), prune_every: int = 1000) -> None:
        self.engine = engine
        self.keep = keep
        self.prune_every = prune_every
        self._claims = 0
        self._lock = threading.Lock()

    def seen_before(self, platform: str, key: str) -> bool:
        now = utcnow()
        try:
            with self.engine.begin() as conn:
                inbound_seen.add(conn, platform=platform, key=key, seen_at=now)
        except IntegrityError:
            return True
        if self._count_claim():
            with self.engine.begin() as conn:
                inbound_seen.prune(conn, before=now - self.keep)
        return False

    def claim(self, conn: Connection, platform: str, key: str) -> bool:
        """Claim `key` inside the caller's transaction: True if it is ours to process."""
        now = utcnow()
        ours = inbound_seen.claim(conn, platform=platform, key=key, seen_at=now)
        if ours and self._count_claim():
            # in this transaction: a second connection would wait for its lock
            inbound_seen.prune(conn, before=now - self.keep)
        return ours

    def claim_all(self, conn: Connection, platform: str, keys: list[str]) -> set[str]:
        """`claim` of several keys in one statement: those that are ours (cut to the stored length)."""
        now = utcnow()
        ours = inbound_seen.claim_all(conn, platform=platform, keys=keys, seen_at=now)
        if ours and any([self._count_claim() for _ in ours]):
            inbound_seen.prune(conn, before=now - self.keep)
        return ours

    def _count_claim(self) -> bool:
        """Count a claim; True when it is time to prune."""
        with self._lock:
            self._claims += 1
            return self._claims % self.prune_every == 0


_KEYS: dict[int, DatabaseKeys] = {}
_KEYS_LOCK = threading.Lock()


def keys_for(engine: Engine, keep_at_least: timedelta | None = None) -> DatabaseKeys:
    """The `DatabaseKeys` of this process for `engine` (one prune counter per database).

    `keep_at_least` raises how long its claims are kept (never lowers it): every key, MsgIds
    included, must outlive the span in which a replay of its request would still be accepted.
    """
    with _KEYS_LOCK:
        found = _KEYS.get(id(engine))
        if found is None or found.engine is not engine:
            found = _KEYS[id(engine)] = DatabaseKeys(engine)
        if keep_at_least is not None and keep_at_least > found.keep:
            found.keep = keep_at_least
        return found


@dataclass(frozen=True)
class Nonce:
    """A callback's signed (timestamp, nonce) pair, claimed once like a delivery key."""

    key: str  # "nonce:" + sha1 of "timestamp:nonce" (fixed length, whatever the caller sent)
    keep: timedelta  # at least the whole span in which this timestamp is accepted, plus a margin

    @classmethod
    def of(cls, timestamp: str, nonce: str, max_age_seconds: int) -> Nonce:
        """A timestamp is accepted from `max_age` before it to `max_age` after it: 2 × max_age."""
        digest = hashlib.sha1(f"{timestamp}:{nonce}".encode()).hexdigest()
        return cls(f"nonce:{digest}", timedelta(seconds=2 * max_age_seconds) + timedelta(minutes=10))


class Layered:
    """Memory in front of a shared store: repeats seen by this process never reach the database."""

    def __init__(self, *stores: Dedupe) -> None:
        self.stores = stores

    def seen_before(self, platform: str, key: str) -> bool:
        return any(store.seen_before(platform, key) for store in self.stores)
