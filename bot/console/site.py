"""The console's `Site`: the shared parts of `bot.web.site`, with the console's pages and access rule."""

from __future__ import annotations

from bot.console.access import Access
from bot.console.pages import Pages
from bot.web.site import Site as WebSite

Site = WebSite[Pages, Access]
