"""The contract between the delivery worker and each channel's push adapter.

A sender turns one outbox row into one platform call and says what happened; the worker owns the
rate ceilings, retries, leases and bookkeeping (DESIGN §5: PTB's limiter is not enough, WeCom drops
silently over its limits).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

Outcome = Literal["sent", "retry", "failed", "blocked", "undeliverable"]


@dataclass(frozen=True)
class OutboxItem:
    """What a sender needs of an outbox row."""

    id: int
    platform: str
    chat_ref: str
    is_group: bool
    payload: dict[str, Any]  # {"text": …, "buttons": [[label, data], …], "image": path?}
    identity_id: int | None
    partner_id: int | None
    attempts: int


@dataclass(frozen=True)
class SendResult:
    outcome: Outcome
    error: str | None = None
    retry_after: float | None = None  # the platform asked the whole channel to wait (HTTP 429)
    extra: dict[str, Any] = field(default_factory=dict)


class Sender(Protocol):
    platform: str

    async def send(self, item: OutboxItem) -> SendResult: ...

    async def close(self) -> None: ...
