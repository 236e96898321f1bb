"""The contract between the delivery worker and each channel's push adapter.

A sender turns one outbox row into one platform call and says what happened; the worker owns the
rate ceilings, retries, leases and bookkeeping (DESIGN §5: PTB's limiter is not enough, WeCom drops
silently over its limits).

A `BatchSender` can also take several rows carrying the same content to different private chats
in one call (WeCom's `message/send` names up to 1000 members). The worker finds out with
`batching(sender)`, groups rows by `batch_key` and hands `send_batch` at most `batch_size` of them;
`send_batch` answers one result per row, in order, so each row keeps its own outcome.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
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


class BatchSender(Sender, Protocol):
    batch_size: int  # recipients a call may name

    def batch_key(self, item: OutboxItem) -> Hashable | None:
        """Rows with equal keys may share a call (same content, private chats); None: this row goes alone."""

    async def send_batch(self, items: Sequence[OutboxItem]) -> list[SendResult]:
        """Send rows of one `batch_key` (distinct chats, at most `batch_size`) in one call: a result per row."""


def batching(sender: Sender) -> BatchSender | None:
    """The sender as a `BatchSender` if it can send batches, else None (one call per row)."""
    return sender if callable(getattr(sender, "send_batch", None)) else None  # type: ignore[return-value]
