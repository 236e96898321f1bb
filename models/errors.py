"""Errors of the data layer carry a message key and parameters, never a sentence.

The words live in `messages/` (DESIGN §3 rule 5); whoever shows the error renders the key.
"""

from __future__ import annotations

from typing import Any


class DataError(Exception):
    """Bad input to a data operation; nothing was changed."""

    def __init__(self, key: str, **params: Any) -> None:
        super().__init__(key)
        self.key = key
        self.params = params

    def __repr__(self) -> str:
        return f"DataError({self.key!r}, {self.params!r})"
