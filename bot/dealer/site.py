"""The dealer page's `Site`: the shared parts of `bot.web.site`, with the page's own pages and access rule."""

from __future__ import annotations

from bot.dealer.access import Access
from bot.dealer.pages import Pages
from bot.web.site import Site as WebSite

Site = WebSite[Pages, Access]
