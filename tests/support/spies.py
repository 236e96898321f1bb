"""Watching the chat core from a test: what it was asked to answer."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import pytest

import handlers.dispatch
from handlers.types import Incoming

T = TypeVar("T")


def spy_on_dispatch(monkeypatch: pytest.MonkeyPatch, keep: Callable[[Incoming], T]) -> list[T]:
    """A list that gets `keep(incoming)` for every message the core is asked to answer from now on."""
    seen: list[T] = []
    real = handlers.dispatch.dispatch

    def counting(session: Any, incoming: Incoming, *args: Any, **kw: Any) -> Any:
        seen.append(keep(incoming))
        return real(session, incoming, *args, **kw)

    monkeypatch.setattr(handlers.dispatch, "dispatch", counting)
    return seen
