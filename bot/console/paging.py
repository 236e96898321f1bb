"""Paged lists: which page a request asks for, and the pager under the table."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlencode

from starlette.requests import Request

PAGE_SIZE = 50


@dataclass(frozen=True)
class Pager:
    page: int
    pages: int
    total: int
    prev_url: str | None
    next_url: str | None


@dataclass(frozen=True)
class Paging:
    page: int
    size: int = PAGE_SIZE

    @classmethod
    def of(cls, request: Request) -> Paging:
        raw = request.query_params.get("page", "1")
        page = int(raw) if raw.isdigit() and 0 < int(raw) < 1_000_000 else 1
        return cls(page)

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.size

    def pager(self, total: int, request: Request) -> Pager:
        """The links keep the request's other parameters (its filters)."""
        pages = max(1, -(-total // self.size))

        def url(page: int) -> str:
            params = [(k, v) for k, v in request.query_params.multi_items() if k != "page"] + [("page", str(page))]
            return f"{request.url.path}?{urlencode(params)}"

        return Pager(self.page, pages, total, url(self.page - 1) if self.page > 1 else None,
                     url(self.page + 1) if self.page < pages else None)
